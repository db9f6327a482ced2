//! Signals: SIGINT, SIGTERM and SIGHUP stop bottle in two stages.
//!
//! The first kills the smolvm call in flight and lets the executor tear
//! down what this run created (the exit code is then 128 + the signal).
//! The second kills the call in flight and exits at once, saying what may
//! be left. smolvm children run in their own process groups, so a
//! terminal's Ctrl-C reaches only bottle.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::smolvm::process::Interrupt;

/// The machines an apply is working on, for the message of a second signal.
#[derive(Debug, Default)]
pub struct Active(Mutex<BTreeSet<String>>);

impl Active {
    pub fn enter(&self, name: &str) {
        if let Ok(mut a) = self.0.lock() {
            a.insert(name.to_string());
        }
    }
    pub fn leave(&self, name: &str) {
        if let Ok(mut a) = self.0.lock() {
            a.remove(name);
        }
    }
    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Start the signal thread. Failing to install handlers is not fatal:
/// bottle then dies by the default action, as any program would.
pub fn install(interrupt: Arc<Interrupt>, active: Arc<Active>) {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if interrupt.raise(sig) {
                super::term::err(&format!(
                    "bottle: {} received: stopping and tearing down what this run created \
                     (send it again to exit at once)\n",
                    signal_name(sig)
                ));
                continue;
            }
            let names = active.names();
            super::term::err(&format!(
                "bottle: {} received again: exiting now\n",
                signal_name(sig)
            ));
            for name in names {
                super::term::err(&format!(
                    "bottle: machine `{name}` may be left half-made; `bottle gc` removes it \
                     (as do `bottle down {name}`, or `bottle apply` of its spec, which replaces it)\n"
                ));
            }
            std::process::exit(128 + sig);
        }
    });
}
