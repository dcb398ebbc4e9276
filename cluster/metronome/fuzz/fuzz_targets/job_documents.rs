//! Job specs, schedules and cron expressions from untrusted bytes: the parsers and the
//! next-fire computation must answer (Ok or a violation), never panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = dcos_metronome::model::parse_job(&v);
        if let Ok(s) = dcos_metronome::model::parse_schedule(&v, Some("s"), "", 1_900_000_000_000) {
            let _ = dcos_metronome::model::next_fire(&s, 1_900_000_000_000);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (cron, tz) = text.split_once('|').unwrap_or((text, "UTC"));
        if let (Ok(spec), Ok(tz)) = (
            dcos_metronome::cron::CronSpec::parse(cron),
            dcos_metronome::cron::parse_tz(tz),
        ) {
            let _ = spec.next_after(chrono_now(), tz);
        }
    }
});

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap_or_default()
}
