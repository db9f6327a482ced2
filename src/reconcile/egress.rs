//! The egress rule: an allow-list is the sandbox, so never create a VM
//! whose network is wider than its spec says without the user saying so.

use crate::smolvm::Version;
use crate::smolvm::version::EGRESS_FIXED;
use crate::spec::Spec;

use super::error::ApplyError;

/// What the VM's network will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// No `allow_cidrs`: no network at all.
    None,
    /// The allow-list is enforced by this smolvm.
    Enforced,
    /// The allow-list will be dropped by this smolvm and the user accepted
    /// unrestricted egress (`--allow-unenforced-egress`).
    Unenforced,
}

/// Decide the egress of `spec` on smolvm `version`, refusing what cannot be
/// enforced unless `allow_unenforced`.
pub fn egress(spec: &Spec, version: Version, allow_unenforced: bool) -> Result<Egress, ApplyError> {
    match (
        spec.allow_cidrs.is_empty(),
        version.enforces_egress(),
        allow_unenforced,
    ) {
        (true, _, _) => Ok(Egress::None),
        (false, true, _) => Ok(Egress::Enforced),
        (false, false, true) => Ok(Egress::Unenforced),
        (false, false, false) => Err(ApplyError::EgressUnenforced {
            name: spec.name.to_string(),
            version,
        }),
    }
}

impl Egress {
    /// The warning every run prints when egress is not enforced.
    pub fn warning(self, name: &str, version: Version) -> Option<String> {
        match self {
            Egress::None | Egress::Enforced => None,
            Egress::Unenforced => Some(format!(
                "warning: egress of `{name}` is UNRESTRICTED: smolvm {version} drops \
                 network.allow_cidrs on `create --from` (fixed in {EGRESS_FIXED})"
            )),
        }
    }
}
