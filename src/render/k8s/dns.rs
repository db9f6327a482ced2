//! Kubernetes' name rules (RFC 1123), as the API server applies them to
//! object names, RuntimeClass names and label values. Pure.

/// The longest DNS-1123 label (a pod's hostname, a label value).
pub const MAX_LABEL: usize = 63;
/// The longest DNS-1123 subdomain (most object names).
pub const MAX_SUBDOMAIN: usize = 253;

/// Why `s` is not a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at
/// most 63 characters), or `None` if it is one.
pub fn label_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".into());
    }
    if s.chars().count() > MAX_LABEL {
        return Some(format!("is longer than {MAX_LABEL} characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "may contain only lowercase letters, digits and `-` (found {c:?})"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("must start and end with a lowercase letter or digit".into());
    }
    None
}

/// Why `s` is not a DNS-1123 subdomain (labels joined by `.`, at most 253
/// characters), or `None` if it is one.
pub fn subdomain_problem(s: &str) -> Option<String> {
    if s.chars().count() > MAX_SUBDOMAIN {
        return Some(format!("is longer than {MAX_SUBDOMAIN} characters"));
    }
    s.split('.').find_map(label_problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_lowercase_alphanumerics_and_inner_dashes() {
        for ok in ["a", "agent-xyz", "0vm", "a-1-b", &"a".repeat(63)] {
            assert_eq!(label_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Agent", "lowercase"),
            ("a_b", "lowercase"),
            ("a.b", "lowercase"),
            ("a-", "start and end"),
            ("-a", "start and end"),
            (&"a".repeat(64), "longer than 63"),
        ] {
            let problem = label_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
    }

    #[test]
    fn subdomains_are_dotted_labels() {
        assert_eq!(subdomain_problem("smolvm"), None);
        assert_eq!(subdomain_problem("kata.fc-1"), None);
        assert!(subdomain_problem("a..b").is_some());
        assert!(subdomain_problem("Smolvm").is_some());
        assert!(subdomain_problem(&"a.".repeat(127)).is_some());
    }
}
