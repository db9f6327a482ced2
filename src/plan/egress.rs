//! The egress rule: an allow-list is the sandbox, so a VM's network is never
//! wider than its spec says without the user saying so.
//!
//! Pure: what the network of a spec will be on a smolvm version. Refusing
//! an unenforced allow-list is the apply's decision, from this value.

use crate::smolvm::Version;
use crate::smolvm::version::EGRESS_FIXED;
use crate::spec::Spec;

/// What the VM's network will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// No `allow_cidrs`: no network at all.
    None,
    /// The allow-list is enforced by this smolvm.
    Enforced,
    /// This smolvm drops the allow-list on `create --from`: egress would be
    /// unrestricted.
    Unenforced,
}

/// The egress of `spec` on smolvm `version`.
pub fn egress(spec: &Spec, version: &Version) -> Egress {
    match (spec.allow_cidrs.is_empty(), version.enforces_egress()) {
        (true, _) => Egress::None,
        (false, true) => Egress::Enforced,
        (false, false) => Egress::Unenforced,
    }
}

impl Egress {
    /// The warning every run prints when egress is not enforced.
    pub fn warning(self, name: &str, version: &Version) -> Option<String> {
        match self {
            Egress::None | Egress::Enforced => None,
            Egress::Unenforced => Some(format!(
                "warning: egress of `{name}` is UNRESTRICTED: smolvm {version} drops \
                 network.allow_cidrs on `create --from` (fixed in {EGRESS_FIXED})"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unenforced_allow_list_warns_and_the_warning_says_why() {
        let v = Version::new(1, 7, 7);
        assert_eq!(Egress::None.warning("a", &v), None);
        assert_eq!(Egress::Enforced.warning("a", &v), None);
        assert_eq!(
            Egress::Unenforced.warning("a", &v).as_deref(),
            Some(
                "warning: egress of `a` is UNRESTRICTED: smolvm 1.7.7 drops \
                 network.allow_cidrs on `create --from` (fixed in 1.8.0)"
            )
        );
    }
}
