//! Property: under any seeded fault schedule, every job line runs exactly once, in order.
//! 12 cases × 9,000 lines = 108,000 lines streamed per run, from a fixed proptest seed so CI
//! is deterministic. Explore more: `MARLIN_FAULT_CASES=200 MARLIN_FAULT_RANDOM=1 cargo test
//! -p easyprint-marlin --release --test fault_schedules`.

use std::time::{Duration, Instant};

use easyprint_marlin::sim::{
    Faults, Harness, LinkConfig, MarlinVersion, MoveTiming, RunReport, SimConfig,
};
use easyprint_marlin::{FlowPolicy, SessionConfig};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const LINES: usize = 9_000;

fn job() -> Vec<String> {
    (0..LINES)
        .map(|i| format!("G1 X{}.{} Y{} E{i}", i % 200, i % 7, (i / 200) % 200))
        .collect()
}

/// Streams the job through a fresh harness with 1 ms moves.
fn stream(
    session: SessionConfig,
    version: MarlinVersion,
    advanced_ok: bool,
    baud: u32,
    faults: Faults,
) -> (Harness, RunReport) {
    let printer = SimConfig {
        version,
        advanced_ok,
        moves: MoveTiming::Fixed(Duration::from_millis(1)),
        faults,
        ..SimConfig::default()
    };
    let link = LinkConfig {
        baud,
        latency: Duration::from_millis(1),
    };
    #[allow(clippy::disallowed_methods)] // origin of virtual time
    let mut h = Harness::new(session, printer, link, Instant::now());
    let report = h.run(job(), Duration::from_secs(30 * 24 * 3600));
    (h, report)
}

fn flow() -> impl Strategy<Value = FlowPolicy> {
    prop_oneof![
        Just(FlowPolicy::PingPong),
        Just(FlowPolicy::Auto { rx_bytes: 128 }),
        Just(FlowPolicy::Credit {
            slots: 4,
            rx_bytes: 128
        }),
    ]
}

fn version() -> impl Strategy<Value = MarlinVersion> {
    prop_oneof![
        Just(MarlinVersion::V1),
        Just(MarlinVersion::V2_0),
        Just(MarlinVersion::V2_1)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("MARLIN_FAULT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12),
        rng_seed: if std::env::var_os("MARLIN_FAULT_RANDOM").is_some() {
            RngSeed::Random
        } else {
            RngSeed::Fixed(0x6d61_726c_696e)
        },
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_line_runs_exactly_once_in_order(
        seed in any::<u64>(),
        version in version(),
        advanced_ok in any::<bool>(),
        flow in flow(),
        baud in prop_oneof![Just(115_200u32), Just(250_000u32)],
        corrupt in 0.0..0.02f64,
        drop in 0.0..0.02f64,
        lose in 0.0..0.01f64,
        lost_ok in 0.0..0.01f64,
        duplicate_ok in 0.0..0.01f64,
        spurious in 0.0..0.01f64,
    ) {
        let session = SessionConfig { flow, ..SessionConfig::default() };
        let faults = Faults {
            seed,
            corrupt_line: corrupt,
            drop_byte: drop,
            lose_line: lose,
            lost_ok,
            duplicate_ok,
            spurious_resend: spurious,
            ..Faults::none()
        };
        let (h, report) = stream(session, version, advanced_ok, baud, faults);
        let expected = job();
        let executed: Vec<&str> = h
            .printer()
            .ledger()
            .iter()
            .filter(|e| e.line.is_some_and(|n| n >= 2) && e.command != "M105")
            .map(|e| e.command.as_str())
            .collect();
        // Never a skipped or repeated line, whatever happens.
        prop_assert!(executed.len() <= LINES);
        // The window never sends more than the firmware's receive buffer holds (lost bytes
        // would be a checksum error the host caused).
        prop_assert_eq!(h.printer().stats().rx_overflow_bytes, 0);
        for (i, (got, want)) in executed.iter().zip(&expected).enumerate() {
            prop_assert_eq!(got, want, "command {}", i);
        }
        // Every line ran and was reported complete, the session never gave up.
        prop_assert_eq!(&report.fatal, &None, "{:?}", report);
        prop_assert!(!report.timed_out, "{:?}", report);
        prop_assert_eq!(executed.len(), LINES, "{:?}", report);
        prop_assert_eq!(report.completed as usize, LINES, "{:?}", report);
    }
}

/// Found by the property above: Marlin 2.0.x (no `ok` after a resend) ate the `ok T:` that
/// answered the end-of-burst M105, so the session waited for it until it gave up.
#[test]
fn regression_m105_answer_is_never_a_resend_ok() {
    let faults = Faults {
        seed: 6_331_914_940_071,
        corrupt_line: 0.004_885_176_480_990_64,
        drop_byte: 0.017_654_109_503_725_115,
        lose_line: 0.009_696_670_263_640_277,
        lost_ok: 0.006_649_679_674_280_305_6,
        duplicate_ok: 0.000_378_201_662_490_347_35,
        spurious_resend: 0.006_743_538_878_219_07,
        ..Faults::none()
    };
    let (_, report) = stream(
        SessionConfig::default(),
        MarlinVersion::V2_0,
        false,
        115_200,
        faults,
    );
    assert_eq!(report.fatal, None, "{report:?}");
    assert_eq!(report.completed as usize, LINES);
}

/// Found by the property above: on old Marlin with ADVANCED_OK, lines a rewind took out of
/// flight ran from an earlier copy; their `ok`s were discarded and they were never reported
/// completed (a job would never finish).
#[test]
fn regression_lines_taken_out_of_flight_are_still_reported() {
    let faults = Faults {
        seed: 11_182_592_973_739_881_978,
        corrupt_line: 0.0,
        drop_byte: 0.015_580_365_956_802_138,
        lose_line: 0.004_124_292_406_079_112,
        lost_ok: 0.006_159_865_282_405_287,
        duplicate_ok: 0.009_585_584_472_002_326,
        spurious_resend: 0.009_324_698_583_604_631,
        ..Faults::none()
    };
    let (_, report) = stream(
        SessionConfig::default(),
        MarlinVersion::V1,
        true,
        115_200,
        faults,
    );
    assert_eq!(report.fatal, None, "{report:?}");
    assert_eq!(report.completed as usize, LINES, "{report:?}");
}

/// Found by asserting the full property with duplicated `ok`s and no ADVANCED_OK: one surplus
/// `ok` put ping-pong one line ahead, and on Marlin 1.x (every line behind a bad one answered
/// with its own error, resend and `ok`) that drift fed itself: every line was requested again
/// until the session gave up. Sync `M105`s (every 32 commands, and after every rewind) absorb
/// surplus `ok`s.
#[test]
fn regression_duplicated_oks_no_longer_feed_a_resend_storm() {
    let faults = Faults {
        seed: 130_980_754_668_194_246,
        duplicate_ok: 0.009_942_188_702_465_138,
        spurious_resend: 0.009_913_869_333_183_872,
        ..Faults::none()
    };
    let (_, report) = stream(
        SessionConfig::default(),
        MarlinVersion::V1,
        false,
        115_200,
        faults,
    );
    assert_eq!(report.fatal, None, "{report:?}");
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.completed as usize, LINES, "{report:?}");
}

/// Streams the job and asserts the full property: no fatal error, no time-out, every line
/// reported complete.
fn assert_completes(flow: FlowPolicy, version: MarlinVersion, baud: u32, faults: Faults) {
    let session = SessionConfig {
        flow,
        ..SessionConfig::default()
    };
    let (h, report) = stream(session, version, false, baud, faults);
    assert_eq!(report.fatal, None, "{report:?}");
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.completed as usize, LINES, "{report:?}");
    let executed = h
        .printer()
        .ledger()
        .iter()
        .filter(|e| e.line.is_some_and(|n| n >= 2) && e.command != "M105")
        .count();
    assert_eq!(executed, LINES);
}

const CREDIT: FlowPolicy = FlowPolicy::Credit {
    slots: 4,
    rx_bytes: 128,
};

/// Found by the property above once it asserted everything for duplicated `ok`s without
/// ADVANCED_OK (about 1 random case in 300 failed). An `M105`'s `ok T:` was lost (or, on
/// Marlin 2.0.x, came while a rewind waited and was dropped, its re-sent copy rejected as a
/// duplicate): that M105 stayed outstanding for good, every later `ok T:` was matched one
/// M105 too early, and one command was never reported complete. Now an M105 unanswered when
/// a probe goes out is written off, and an `ok T:` during a rewind answers the M105 due.
#[test]
fn regression_an_m105_without_its_answer_is_not_outstanding_forever() {
    let faults = Faults {
        seed: 1_185_477_113_551_970_163,
        corrupt_line: 0.017_610_305_321_035_878,
        drop_byte: 0.016_427_825_795_597_976,
        lose_line: 0.001_310_839_966_457_642_7,
        lost_ok: 0.005_837_721_995_931_277,
        duplicate_ok: 0.008_697_428_469_299_155,
        spurious_resend: 0.004_156_291_322_843_369_6,
        ..Faults::none()
    };
    assert_completes(CREDIT, MarlinVersion::V2_1, 250_000, faults);
}

/// Found by the property above: an `ok` lost, then the probes sent into the silence lost or
/// miscounted; with at most two unanswered probes the session declared the printer lost after
/// 30 s of silence. Now up to four go out (two while a long command runs).
#[test]
fn regression_lost_probes_are_not_a_lost_printer() {
    let faults = Faults {
        seed: 15_239_995_912_767_487_888,
        corrupt_line: 0.010_573_184_790_306_039,
        drop_byte: 0.019_343_966_920_418_83,
        lose_line: 0.007_967_047_131_303_594,
        lost_ok: 0.001_162_306_887_843_174_5,
        duplicate_ok: 0.006_310_238_301_742_995,
        spurious_resend: 0.001_517_064_640_945_724_3,
        ..Faults::none()
    };
    assert_completes(CREDIT, MarlinVersion::V2_0, 250_000, faults);
}

/// Found by the property above with the credit window and no ADVANCED_OK: a rewind took N+1
/// out of flight, its `ok` was taken for a resend's, and the firmware (which had run it) then
/// asked for N+2, the next line to send: nothing was re-sent, and N+1 was never reported
/// complete.
#[test]
fn regression_lines_rewound_and_never_re_sent_are_reported() {
    let faults = Faults {
        seed: 263_829_082_015_012_476,
        corrupt_line: 0.011_396_097_146_772_753,
        drop_byte: 0.006_506_516_026_303_706,
        lose_line: 0.001_163_534_417_441_467_8,
        lost_ok: 0.009_338_095_283_490_716,
        duplicate_ok: 0.004_554_448_404_186_419,
        spurious_resend: 0.003_057_629_282_910_497,
        ..Faults::none()
    };
    assert_completes(CREDIT, MarlinVersion::V2_1, 250_000, faults);
}

/// Found by the property above: a credit window full of bytes, every `ok` for it lost, and no
/// probe ever went out (it would not have fitted the receive buffer), so after 30 s of silence
/// the printer was declared lost. Only a long command keeps lines in the receive buffer.
#[test]
fn regression_a_full_window_still_probes() {
    let faults = Faults {
        seed: 7_341_177_388_274_923_235,
        corrupt_line: 0.017_981_122_768_421_683,
        drop_byte: 0.002_604_964_435_938_004_4,
        lose_line: 0.007_651_040_593_962_578,
        lost_ok: 0.007_170_426_361_255_183_5,
        duplicate_ok: 0.000_730_111_391_116_582_2,
        spurious_resend: 0.008_946_505_513_861_811,
        ..Faults::none()
    };
    assert_completes(CREDIT, MarlinVersion::V2_1, 250_000, faults);
}

/// Found by the property above: the simulator turned a checksum digit into a second `*`,
/// Marlin read the checksum as 0, it matched (one time in 256) and `M105*2` ran: an extra
/// command from the fault injection, not from the host. The simulator no longer injects a `*`.
#[test]
fn regression_no_line_runs_from_a_forged_checksum() {
    let faults = Faults {
        seed: 761_847_882_327_462_913,
        corrupt_line: 0.009_550_633_252_681_73,
        drop_byte: 0.005_886_349_627_738_475,
        lose_line: 0.000_764_935_797_784_257_5,
        lost_ok: 0.000_319_542_650_970_279_6,
        duplicate_ok: 0.001_981_986_775_340_200_3,
        spurious_resend: 0.009_136_685_155_655_77,
        ..Faults::none()
    };
    assert_completes(FlowPolicy::PingPong, MarlinVersion::V1, 115_200, faults);
}

/// Found by exploring a credit window without ADVANCED_OK (`FlowPolicy::Credit` forced on a
/// plain-`ok` Marlin 2.1): duplicated `ok`s and spurious resends put several copies of lines
/// on the wire, `ok`s were matched to the wrong copy and the same line was requested again
/// and again until the session gave up with `ResendLoop`. Now the window backs off to
/// ping-pong when a line is requested twice in a row, until a sync's worth of lines went
/// through.
#[test]
fn regression_a_blind_credit_window_backs_off_in_a_resend_storm() {
    let faults = Faults {
        seed: 48,
        lose_line: 0.000_403_836_287_826_243_44,
        duplicate_ok: 0.008_165_116_405_229_636,
        spurious_resend: 0.007_847_969_970_977_345,
        ..Faults::none()
    };
    assert_completes(CREDIT, MarlinVersion::V2_1, 115_200, faults);
}
