//! Drives the embedded store's writer with a fuzzed sequence of commits and I/O faults (a
//! failing append after any number of bytes, a failing fsync, a failing truncation), then
//! reopens the store from disk: every acknowledged write must be there with its value, and no
//! refused one.
#![no_main]
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use dcos_store::{EmbeddedStore, LogFile, LogOpener, Op, Options, Store};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Plan {
    append_budget: Option<usize>,
    fail_sync: bool,
    fail_truncate: bool,
}

struct FaultyLog {
    file: File,
    plan: Arc<Mutex<Plan>>,
}

impl LogFile for FaultyLog {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let budget = self.plan.lock().unwrap().append_budget.take();
        match budget {
            Some(n) => {
                self.file.write_all(&buf[..n.min(buf.len())])?;
                Err(io::Error::from_raw_os_error(28))
            }
            None => self.file.write_all(buf),
        }
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.plan.lock().unwrap().fail_sync {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.file.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if self.plan.lock().unwrap().fail_truncate {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.file.set_len(len)
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(Mutex::new(Plan::default()));
    let p = plan.clone();
    let opener: LogOpener = Arc::new(move |path: &Path| {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(FaultyLog {
            file,
            plan: p.clone(),
        }) as Box<dyn LogFile>)
    });
    let opts = Options {
        fsync: false,
        compact_after_bytes: 300,
    };
    let store = EmbeddedStore::open_with_log(dir.path(), opts, opener).unwrap();
    // The model: what was acknowledged. A commit that failed while the log could not be cut
    // back (a write failure and then a truncation failure) is indeterminate until the store
    // repairs its log (which cuts it off for good); the store refuses every write meanwhile.
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut maybe: Option<(String, Option<Vec<u8>>)> = None;
    for chunk in data.chunks(3).take(64) {
        let [cmd, a, b] = match chunk {
            [x, y, z] => [*x, *y, *z],
            _ => break,
        };
        let key = format!("/k/{}", a % 8);
        match cmd % 6 {
            0..=2 => {
                let value = (cmd % 6 != 2).then(|| vec![b; (a as usize) % 40]);
                let op = match &value {
                    Some(v) => Op::put(&key, v.clone()),
                    None => Op::delete(&key),
                };
                let was_broken = store.writable().is_err();
                if !was_broken {
                    maybe = None; // repaired: a pending indeterminate write was cut off
                }
                match store.commit(vec![op]) {
                    Ok(_) => {
                        maybe = None;
                        match value {
                            Some(v) => model.insert(key, v),
                            None => model.remove(&key),
                        };
                    }
                    Err(_) if !was_broken && store.writable().is_err() => {
                        maybe = Some((key, value))
                    }
                    Err(_) => {}
                }
            }
            3 => plan.lock().unwrap().append_budget = Some(b as usize % 64),
            4 => plan.lock().unwrap().fail_sync = b % 2 == 0,
            _ => plan.lock().unwrap().fail_truncate = b % 2 == 0,
        }
    }
    if store.writable().is_ok() {
        maybe = None;
    }
    drop(store);
    let reopened = EmbeddedStore::open(dir.path()).unwrap();
    let stored: BTreeMap<String, Vec<u8>> = reopened
        .list("/k/")
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    let mut alternative = model.clone();
    if let Some((key, value)) = maybe {
        match value {
            Some(v) => alternative.insert(key, v),
            None => alternative.remove(&key),
        };
    }
    assert!(
        stored == model || stored == alternative,
        "what a restart reads is what was acknowledged: {stored:?} vs {model:?}"
    );
});
