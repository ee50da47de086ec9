//! Uploads a G-code file to a Marlin printer's SD card, lists the card, and optionally
//! prints the file from SD while following its progress.
//!
//! Run with `cargo run -p easyprint-examples --example sd_upload -- PORT BAUD FILE [--print]`,
//! e.g. `... -- /dev/ttyUSB0 115200 part.gcode --print`. With `virtual` as PORT it uploads to
//! a simulated printer served on a pseudo-terminal in this process (one with long-name
//! writing and without SD autoreport, so the host polls progress). The name on the card is the
//! file's own name when the firmware can write long names (`Cap:LFN_WRITE`) and it fits, else
//! the name cut to 8.3 (`part.gcode` → `PART.GCO`).

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use easyprint_marlin::printer::{sd_file_name, Printer, PrinterConfig, PrinterEvent};
use easyprint_marlin::sim::{LinkConfig, MoveTiming, SdConfig, SimConfig, VirtualPrinter};
use easyprint_marlin::transport::PortSpec;

/// `part of a name.gcode` → `PARTOFAN.GCO`.
fn short_name(path: &Path) -> String {
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(n)
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("upload");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("gco");
    let stem = match clean(stem, 8) {
        s if s.is_empty() => "UPLOAD".to_owned(),
        s => s,
    };
    format!("{stem}.{}", clean(ext, 3))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let print = args.iter().any(|a| a == "--print");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--print").collect();
    let [port, baud, file] = args.as_slice() else {
        return Err("usage: sd_upload PORT|virtual BAUD FILE [--print]".into());
    };
    let text = std::fs::read_to_string(file)?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let total = lines.len() as u64;

    let baud: u32 = baud.parse()?;
    // Keep the simulator alive as long as the printer handle.
    let (_simulator, path) = if port.as_str() == "virtual" {
        let sim = SimConfig {
            moves: MoveTiming::Fixed(Duration::from_millis(1)),
            homing_time: Duration::from_millis(200),
            sd: SdConfig {
                autoreport: false,
                long_name_write: true,
                ..SdConfig::default()
            },
            ..SimConfig::default()
        };
        let link = LinkConfig {
            baud,
            ..LinkConfig::default()
        };
        let vp = VirtualPrinter::spawn(sim, link)?;
        let path = vp.path().to_string_lossy().into_owned();
        (Some(vp), path)
    } else {
        (None, port.to_string())
    };
    let printer =
        Printer::connect(&PortSpec::Serial { path, baud }, PrinterConfig::default()).await?;
    let long_names = printer
        .status()
        .borrow()
        .firmware
        .as_ref()
        .is_some_and(|f| f.has("LFN_WRITE"));
    let path = Path::new(file.as_str());
    let own = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = match sd_file_name(own, long_names) {
        Ok(name) => name,
        Err(_) => short_name(path),
    };

    let mut events = printer.events();
    let progress = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            match event {
                PrinterEvent::Upload(p) => {
                    println!(
                        "uploading: {}/{total} lines, {} bytes",
                        p.acknowledged, p.bytes
                    )
                }
                PrinterEvent::Session(easyprint_marlin::Event::Sd(
                    easyprint_marlin::SdStatus::Printing { done, total },
                )) => println!("printing from SD: byte {done}/{total}"),
                _ => {}
            }
        }
    });

    let report = printer.sd_upload(&name, lines, Some(total)).await?;
    println!(
        "uploaded {name}: {} lines, {} bytes",
        report.acknowledged, report.bytes
    );
    let listing = printer.sd_list().await?;
    for entry in &listing.entries {
        let long = entry.long_name.as_deref().unwrap_or("");
        println!("  {:<12} {:>9} {long}", entry.name, entry.size);
    }
    if listing.truncated {
        println!("  … {} files in all", listing.total);
    }
    if print {
        printer.sd_print(&name).await?;
        let mut status = printer.status();
        status
            .wait_for(|s| s.sd.is_some_and(|sd| sd.finished))
            .await?;
        println!("{name} printed");
    }
    printer.close().await;
    progress.abort();
    Ok(())
}
