//! The simulator's own knowledge of smolvm releases: which release
//! changed what, transcribed from the contract (`smolvm-cli.md`).
//!
//! Owns every version threshold the simulator acts on, each written once
//! with the contract line it comes from. It must not import the wrapper's
//! version, dialect or egress tables: the simulator is an oracle for them,
//! and a mistake copied from bottle would never fail a test.
//!
//! Versions are `semver` versions, so a pre-release orders before its
//! release (`1.8.0-rc.1 < 1.8.0`) and behaves like the release before.
//! Outside 0.8.0 – 1.9.x the simulator extrapolates: older releases behave
//! like 0.8.0, newer ones like 1.9.x.

use semver::Version;

/// `create` and `delete` take the name as `--name` from 1.0.2; before, it
/// is positional.
pub const NAME_FLAG_SINCE: Version = Version::new(1, 0, 2);
/// `--secret-env` and `--secret-file` (`exec` and `create`) exist from 1.0.0.
pub const SECRETS_SINCE: Version = Version::new(1, 0, 0);
/// `stop` of a missing machine fails and `delete` stops a running VM first,
/// from 0.8.1 (0.8.0 exits 0 and leaves the VM process running).
pub const STRICT_STOP_DELETE_SINCE: Version = Version::new(0, 8, 1);
/// `pack create -o X.smolmachine` is refused up front from 1.7.0.
pub const SIDECAR_OUTPUT_REFUSED_SINCE: Version = Version::new(1, 7, 0);
/// `create --from` enforces `--allow-cidr`/`--allow-host` from 1.8.0
/// (smolvm PR #892); before, it parses and silently drops them.
pub const FROM_EGRESS_KEPT_SINCE: Version = Version::new(1, 8, 0);
/// Up to 1.1.2 every egress policy ran on the TSI backend, which does not
/// enforce an allow-list at all; 1.1.3 made virtio-net the default.
pub const ALLOW_LIST_ENFORCED_SINCE: Version = Version::new(1, 1, 3);
/// The JSON views carry `labels` from 1.8.0.
pub const LABELS_SINCE: Version = Version::new(1, 8, 0);
/// `cp --mode/--uid/--gid`, `exec -d/--detach` and the `frozen` state
/// exist from 1.9.0.
pub const V1_9_SINCE: Version = Version::new(1, 9, 0);

/// How `create` and `delete` name the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// 0.8.0 – 1.0.1: `create … NAME`, `delete -f NAME`.
    Positional,
    /// 1.0.2 on: `create --name NAME …`, `delete -f --name NAME`.
    Flag,
}

/// The grammar a release parses: each era adds flags to the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 0.8.0 – 0.9.x: positional names, no secret flags.
    Positional,
    /// 1.0.0 – 1.0.1: positional names, `--secret-env`/`--secret-file`.
    PositionalSecrets,
    /// 1.0.2 – 1.8.x: `--name` for `create`/`delete`, secret flags.
    NameFlag,
    /// 1.9.x: as above, plus `cp --mode/--uid/--gid` and `exec -d`.
    NameFlagV1_9,
}

/// What `create --from` does with an allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromEgress {
    /// Before 1.8.0: parsed, then silently dropped.
    Dropped,
    /// From 1.8.0: enforced.
    Kept,
}

/// The network backend behind an egress policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Up to 1.1.2: TSI, which lets everything through despite a list.
    Tsi,
    /// From 1.1.3: virtio-net, which enforces the list.
    VirtioNet,
}

/// What `stop` of a machine that does not exist does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMissing {
    /// 0.8.0: exit 0, `Machine 'NAME' not found or not running`.
    Quiet,
    /// From 0.8.1: exit 1, `Error: vm not found: NAME`.
    NotFound,
}

/// What `delete` does to a running VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteRunning {
    /// 0.8.0: removes the record, leaves the VM process running.
    LeavesProcess,
    /// From 0.8.1: stops the VM first.
    StopsFirst,
}

/// How `create` of an existing name is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistsWording {
    /// 0.8.0 – 1.0.1: `… already exists`.
    Exists,
    /// 1.0.2 – 1.9.x: `… already exists or is being created`.
    ExistsOrBeingCreated,
}

/// One smolvm release as the simulator plays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release(pub Version);

impl Release {
    /// The grammar this release parses.
    pub fn era(&self) -> Era {
        let v = &self.0;
        if *v >= V1_9_SINCE {
            Era::NameFlagV1_9
        } else if *v >= NAME_FLAG_SINCE {
            Era::NameFlag
        } else if *v >= SECRETS_SINCE {
            Era::PositionalSecrets
        } else {
            Era::Positional
        }
    }

    pub fn naming(&self) -> Naming {
        match self.0 >= NAME_FLAG_SINCE {
            true => Naming::Flag,
            false => Naming::Positional,
        }
    }

    pub fn egress_on_from(&self) -> FromEgress {
        match self.0 >= FROM_EGRESS_KEPT_SINCE {
            true => FromEgress::Kept,
            false => FromEgress::Dropped,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.0 >= ALLOW_LIST_ENFORCED_SINCE {
            true => Backend::VirtioNet,
            false => Backend::Tsi,
        }
    }

    pub fn stop_missing(&self) -> StopMissing {
        match self.0 >= STRICT_STOP_DELETE_SINCE {
            true => StopMissing::NotFound,
            false => StopMissing::Quiet,
        }
    }

    pub fn delete_running(&self) -> DeleteRunning {
        match self.0 >= STRICT_STOP_DELETE_SINCE {
            true => DeleteRunning::StopsFirst,
            false => DeleteRunning::LeavesProcess,
        }
    }

    pub fn exists_wording(&self) -> ExistsWording {
        match self.naming() {
            Naming::Flag => ExistsWording::ExistsOrBeingCreated,
            Naming::Positional => ExistsWording::Exists,
        }
    }

    /// Whether `pack create -o X.smolmachine` is refused up front.
    pub fn refuses_sidecar_output(&self) -> bool {
        self.0 >= SIDECAR_OUTPUT_REFUSED_SINCE
    }

    /// Whether the JSON views carry `labels`.
    pub fn has_labels(&self) -> bool {
        self.0 >= LABELS_SINCE
    }

    /// Whether a machine can be in the `frozen` state.
    pub fn has_frozen(&self) -> bool {
        self.0 >= V1_9_SINCE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str) -> Release {
        Release(Version::parse(v).unwrap())
    }

    #[test]
    fn names_become_a_flag_at_1_0_2() {
        assert_eq!(r("1.0.1").naming(), Naming::Positional);
        assert_eq!(r("1.0.2-rc.1").naming(), Naming::Positional);
        assert_eq!(r("1.0.2").naming(), Naming::Flag);
        assert_eq!(r("0.8.0").exists_wording(), ExistsWording::Exists);
        assert_eq!(
            r("1.0.2").exists_wording(),
            ExistsWording::ExistsOrBeingCreated
        );
    }

    #[test]
    fn eras_add_flags_in_order() {
        assert_eq!(r("0.8.0").era(), Era::Positional);
        assert_eq!(r("0.9.9").era(), Era::Positional);
        assert_eq!(r("1.0.0-beta.2").era(), Era::Positional);
        assert_eq!(r("1.0.0").era(), Era::PositionalSecrets);
        assert_eq!(r("1.0.1").era(), Era::PositionalSecrets);
        assert_eq!(r("1.0.2").era(), Era::NameFlag);
        assert_eq!(r("1.8.9").era(), Era::NameFlag);
        assert_eq!(r("1.9.0").era(), Era::NameFlagV1_9);
        assert_eq!(r("1.9.3").era(), Era::NameFlagV1_9);
    }

    #[test]
    fn from_drops_the_allow_list_before_1_8_0() {
        assert_eq!(r("1.7.7").egress_on_from(), FromEgress::Dropped);
        assert_eq!(r("1.7.9").egress_on_from(), FromEgress::Dropped);
        assert_eq!(r("1.8.0-rc.1").egress_on_from(), FromEgress::Dropped);
        assert_eq!(r("1.8.0").egress_on_from(), FromEgress::Kept);
    }

    #[test]
    fn allow_lists_are_enforced_by_the_backend_from_1_1_3() {
        assert_eq!(r("0.8.0").backend(), Backend::Tsi);
        assert_eq!(r("1.1.2").backend(), Backend::Tsi);
        assert_eq!(r("1.1.3-rc.1").backend(), Backend::Tsi);
        assert_eq!(r("1.1.3").backend(), Backend::VirtioNet);
    }

    #[test]
    fn only_0_8_0_is_lenient_about_stop_and_delete() {
        assert_eq!(r("0.8.0").stop_missing(), StopMissing::Quiet);
        assert_eq!(r("0.8.0").delete_running(), DeleteRunning::LeavesProcess);
        assert_eq!(r("0.8.1-rc.1").stop_missing(), StopMissing::Quiet);
        assert_eq!(r("0.8.1").stop_missing(), StopMissing::NotFound);
        assert_eq!(r("0.8.1").delete_running(), DeleteRunning::StopsFirst);
        assert_eq!(r("1.9.3").stop_missing(), StopMissing::NotFound);
    }

    #[test]
    fn later_additions_have_their_release() {
        assert!(!r("1.6.9").refuses_sidecar_output());
        assert!(r("1.7.0").refuses_sidecar_output());
        assert!(!r("1.7.9").has_labels());
        assert!(r("1.8.0").has_labels());
        assert!(!r("1.8.9").has_frozen());
        assert!(r("1.9.0").has_frozen());
    }
}
