//! Streams a G-code file to a Marlin printer and reports progress.
//!
//! Run with `cargo run -p easyprint-examples --example stream_file -- PORT BAUD FILE`, e.g.
//! `... -- /dev/ttyUSB0 115200 part.gcode`. To try it without a printer, start
//! `cargo run -p easyprint-marlin --bin virtual-printer` and use the path it prints as PORT.

use std::error::Error;

use easyprint_marlin::printer::{Printer, PrinterConfig, PrinterEvent};
use easyprint_marlin::transport::PortSpec;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, baud, file] = args.as_slice() else {
        return Err("usage: stream_file PORT BAUD FILE".into());
    };
    let text = std::fs::read_to_string(file)?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let total = lines.len() as u64;

    let spec = PortSpec::Serial {
        path: port.clone(),
        baud: baud.parse()?,
    };
    let printer = Printer::connect(&spec, PrinterConfig::default()).await?;
    if let Some(fw) = &printer.status().borrow().firmware {
        let name = fw
            .info
            .as_ref()
            .map_or("unknown firmware", |i| i.name.as_str());
        println!("connected: {name} (ADVANCED_OK: {})", fw.advanced_ok);
    }

    let mut events = printer.events();
    printer.stream(lines, Some(total)).await?;
    loop {
        match events.recv().await? {
            PrinterEvent::Progress(p) => println!("{}/{total} lines acknowledged", p.acknowledged),
            PrinterEvent::JobFinished(p) => {
                println!("done: {} commands acknowledged", p.acknowledged);
                return Ok(());
            }
            PrinterEvent::Session(easyprint_marlin::Event::Fatal(e)) => return Err(e.into()),
            _ => {}
        }
    }
}
