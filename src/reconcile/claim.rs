//! The claim of a run's machines: each one's lock, and one look at all of
//! them.
//!
//! A run that changes machines (`apply`, `gc`) first takes the lock of
//! every machine it will act on, in name order (so two runs over the same
//! machines never wait on each other in a circle), and only then asks
//! smolvm once, with `machine ls --json`, what exists. What that one call
//! says of a machine is what its decision is made from: no other bottle
//! can change the machine between the look and the apply, since each lock
//! is held from before the look until that machine's apply ends. `plan`
//! takes the same one look without locks.
//!
//! When `ls` cannot answer (it fails, or prints what cannot be read), each
//! machine is asked with `machine status` instead, as before; a signal
//! during the look is reported, never taken for an answer.
//!
//! Owns no decision and runs no mutating call.

use std::collections::BTreeMap;

use crate::plan::Observed;
use crate::smolvm::{MachineState, Smolvm};
use crate::spec::MachineName;
use crate::state::MachineLock;

use super::{ApplyError, Env};

/// What one `machine ls --json` said of every machine; `None` when it
/// could not answer.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    listed: Option<BTreeMap<String, MachineState>>,
}

impl Survey {
    /// What the survey says of `name`: `None` when it could not answer
    /// (ask `status`), otherwise present in its state or missing.
    pub fn of(&self, name: &MachineName) -> Option<Observed> {
        let listed = self.listed.as_ref()?;
        Some(match listed.get(name.as_str()) {
            Some(state) => Observed::Present(state.clone()),
            None => Observed::Missing,
        })
    }
}

/// A machine claimed for one run: its lock, and what the run's look said
/// of it (`None`: ask `status`).
#[derive(Debug)]
pub struct Claim {
    pub(super) _lock: MachineLock,
    pub(super) seen: Option<Observed>,
}

impl<S: Smolvm> Env<'_, S> {
    /// One `machine ls --json`. A failure, or output that cannot be read,
    /// leaves every machine to be asked on its own; a signal is returned.
    pub fn survey(&self) -> Result<Survey, i32> {
        let listed = match self.client.ls() {
            Ok(all) => Some(all.into_iter().map(|m| (m.name, m.state)).collect()),
            Err(_) => match self.client.interrupted() {
                Some(signal) => return Err(signal),
                None => None,
            },
        };
        Ok(Survey { listed })
    }

    /// Claim one machine: [`Env::claim_all`] of it alone.
    pub fn claim(&self, name: &MachineName) -> Result<Claim, ApplyError> {
        let mut claims = self.claim_all(&[name], |_| None);
        claims
            .pop()
            .unwrap_or_else(|| unreachable!("one claim per name"))
    }

    /// Lock every machine of `names` (in name order), then look at them
    /// all with one call; one result per name, in the order given. A name
    /// `refused` gives an error for is neither locked nor looked at; when
    /// no lock was taken, nothing is asked of smolvm.
    pub fn claim_all(
        &self,
        names: &[&MachineName],
        refused: impl Fn(usize) -> Option<ApplyError>,
    ) -> Vec<Result<Claim, ApplyError>> {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by_key(|&i| names[i].as_str());
        let mut locked: Vec<(usize, Result<MachineLock, ApplyError>)> = order
            .into_iter()
            .map(|i| match refused(i) {
                Some(e) => (i, Err(e)),
                None => (i, self.lock(names[i]).map_err(ApplyError::from)),
            })
            .collect();
        locked.sort_by_key(|(i, _)| *i);
        let any = locked.iter().any(|(_, l)| l.is_ok());
        let survey = match any.then(|| self.survey()).transpose() {
            Ok(s) => s.unwrap_or_default(),
            Err(signal) => return interrupted(names, locked, signal),
        };
        let claim = |(i, lock): (usize, Result<MachineLock, ApplyError>)| {
            Ok(Claim {
                _lock: lock?,
                seen: survey.of(names[i]),
            })
        };
        locked.into_iter().map(claim).collect()
    }
}

/// The claims of a run a signal stopped during its look: nothing was
/// changed.
fn interrupted(
    names: &[&MachineName],
    locked: Vec<(usize, Result<MachineLock, ApplyError>)>,
    signal: i32,
) -> Vec<Result<Claim, ApplyError>> {
    let each = |(i, lock): (usize, Result<MachineLock, ApplyError>)| {
        lock?;
        Err(ApplyError::Interrupted {
            name: names[i].to_string(),
            signal,
        })
    };
    locked.into_iter().map(each).collect()
}
