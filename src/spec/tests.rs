//! Every validation rule, with the location, key and message it reports;
//! the key of every kind of TOML and shape error; the order, cap and
//! display of problems.

use std::path::Path;

use super::*;

const MINIMAL: &str = "name = \"vm\"\n[image]\nref = \"alpine:3\"\n";

fn problems(text: &str) -> Vec<Problem> {
    match parse(Path::new("/specs/s.toml"), text) {
        Ok(spec) => panic!("expected an error, got {spec:?}"),
        Err(e) => e.problems().to_vec(),
    }
}

/// The single problem of `text`, as `line:col key: message`.
fn one(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    format!(
        "{}:{} {}: {}",
        p[0].at.line, p[0].at.column, p[0].key, p[0].message
    )
}

#[test]
fn the_minimal_spec_is_valid_with_defaults() {
    let s = parse(Path::new("/specs/s.toml"), MINIMAL).unwrap();
    assert_eq!(s.name.as_str(), "vm");
    assert_eq!(s.image, Image::Ref(ImageRef::parse("alpine:3").unwrap()));
    assert!(
        s.allow_cidrs.is_empty() && s.env.is_empty() && s.copies.is_empty() && s.execs.is_empty()
    );
    assert_eq!(s.ready_timeout, DEFAULT_READY_TIMEOUT);
}

#[test]
fn the_full_spec_is_read() {
    let text = r#"
name = "agent-xyz"
[image]
pack = "../build/agent.smolmachine"
[network]
allow_cidrs = ["192.168.50.2/32", "10.1.0.0/16"]
[env]
HTTPS_PROXY = "http://192.168.50.2:8888"
[[copy]]
src = "../fixtures/workspace"
dest = "/workspace"
[ready]
timeout = "2m"
[[exec]]
run = ["sh", "-c", "true"]
workdir = "/workspace"
env = { GIT_PAGER = "cat" }
timeout = "30s"
"#;
    let s = parse(Path::new("/srv/specs/agent.toml"), text).unwrap();
    let Image::Pack { path, .. } = &s.image else {
        panic!("{:?}", s.image)
    };
    assert_eq!(path, Path::new("/srv/build/agent.smolmachine"));
    assert_eq!(s.allow_cidrs.len(), 2);
    assert_eq!(
        s.env.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["HTTPS_PROXY=http://192.168.50.2:8888"]
    );
    assert_eq!(s.copies[0].src, Path::new("/srv/fixtures/workspace"));
    assert_eq!(s.copies[0].dest.as_str(), "/workspace");
    assert_eq!(s.ready_timeout, Duration::from_secs(120));
    let e = &s.execs[0];
    assert_eq!(e.run, ["sh", "-c", "true"]);
    assert_eq!(
        e.workdir.as_ref().map(GuestPath::as_str),
        Some("/workspace")
    );
    assert_eq!(e.env[0].to_string(), "GIT_PAGER=cat");
    assert_eq!(e.timeout, Some(Duration::from_secs(30)));
}

#[test]
fn unknown_keys_are_rejected_where_they_stand() {
    let got = one("name = \"vm\"\nbogus = 1\n[image]\nref = \"a\"\n");
    assert!(got.starts_with("2:1 bogus: unknown field `bogus`"), "{got}");
    let nested = one("name = \"vm\"\n[image]\nref = \"a\"\n[network]\nallow_cidr = []\n");
    assert!(
        nested.starts_with("5:1 network.allow_cidr: unknown field `allow_cidr`"),
        "{nested}"
    );
}

#[test]
fn syntax_and_type_errors_are_located() {
    let got = one("name = \"vm\"\n[image]\nref = \n");
    assert!(got.starts_with("3:7 image.ref:"), "{got}");
    let ty = one("name = 5\n[image]\nref = \"a\"\n");
    assert!(
        ty.starts_with("1:8 name: invalid type: integer `5`, expected a string"),
        "{ty}"
    );
    let missing = one("[image]\nref = \"a\"\n");
    assert!(missing.contains("name: missing field `name`"), "{missing}");
}

#[test]
fn names_follow_smolvm_rule() {
    let got = one("name = \"-vm\"\n[image]\nref = \"a\"\n");
    assert_eq!(got, "1:8 name: must start with a letter or digit");
    let dd = one("name = \"a--b\"\n[image]\nref = \"a\"\n");
    assert_eq!(dd, "1:8 name: must not contain `--`");
    let long = one(&format!(
        "name = \"{}\"\n[image]\nref = \"a\"\n",
        "a".repeat(129)
    ));
    assert_eq!(long, "1:8 name: is longer than 128 characters");
}

#[test]
fn exactly_one_image_source() {
    let both = one("name = \"vm\"\n[image]\nref = \"a\"\npack = \"p.smolmachine\"\n");
    assert_eq!(
        both,
        "4:8 image: give exactly one of `ref` and `pack`, not both"
    );
    let neither = one("name = \"vm\"\n[image]\n");
    assert_eq!(neither, "2:1 image: give exactly one of `ref` or `pack`");
    let flag = one("name = \"vm\"\n[image]\nref = \"--help\"\n");
    assert_eq!(flag, "3:7 image.ref: must not start with `-`");
    let not_pack = one("name = \"vm\"\n[image]\npack = \"agent.tar\"\n");
    assert_eq!(
        not_pack,
        "3:8 image.pack: must name a `.smolmachine` pack file"
    );
}

#[test]
fn cidrs_must_parse_without_host_bits() {
    let host = one(&format!(
        "{MINIMAL}[network]\nallow_cidrs = [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n"
    ));
    assert_eq!(
        host,
        "5:30 network.allow_cidrs[1]: has host bits set; did you mean 10.0.0.0/8?"
    );
    let bad = one(&format!("{MINIMAL}[network]\nallow_cidrs = [\"--net\"]\n"));
    assert!(
        bad.starts_with("5:16 network.allow_cidrs[0]: `--net` is not a CIDR"),
        "{bad}"
    );
}

#[test]
fn network_reads_allow_hosts_and_dns() {
    let text = format!(
        "{MINIMAL}[network]\nallow_cidrs = [\"10.0.0.0/8\"]\nallow_hosts = [\"Proxy.Internal\"]\n"
    );
    let s = parse(Path::new("/specs/s.toml"), &text).unwrap();
    assert_eq!(s.allow_hosts, [HostName::parse("proxy.internal").unwrap()]);
    assert_eq!((s.dns_written, s.dns()), (None, Dns::Closed));
    assert!(s.has_allow_list());
    let open = format!("{MINIMAL}[network]\nallow_cidrs = [\"10.0.0.0/8\"]\ndns = \"open\"\n");
    let s = parse(Path::new("/specs/s.toml"), &open).unwrap();
    assert_eq!((s.dns_written, s.dns()), (Some(Dns::Open), Dns::Open));
    let hosts_only = format!("{MINIMAL}[network]\nallow_hosts = [\"proxy\"]\ndns = \"closed\"\n");
    let s = parse(Path::new("/specs/s.toml"), &hosts_only).unwrap();
    assert!(s.allow_cidrs.is_empty() && s.has_allow_list());
    let none = parse(Path::new("/specs/s.toml"), MINIMAL).unwrap();
    assert!(!none.has_allow_list());
}

#[test]
fn allow_hosts_are_host_names_without_ports() {
    let net = |hosts: &str| format!("{MINIMAL}[network]\nallow_hosts = [{hosts}]\n");
    assert_eq!(
        one(&net("\"proxy\", \"proxy:3128\"")),
        "5:25 network.allow_hosts[1]: `proxy:3128` has a port: give the host name alone \
         (smolvm allows every port of an allowed host)"
    );
    assert_eq!(
        one(&net("\"192.168.50.2\"")),
        "5:16 network.allow_hosts[0]: `192.168.50.2` is an address, not a host name: \
         put it in `network.allow_cidrs`"
    );
    let bad = one(&net("\"--net\""));
    assert!(
        bad.starts_with("5:16 network.allow_hosts[0]: `--net` is not a host name"),
        "{bad}"
    );
}

#[test]
fn dns_is_a_word_that_needs_an_allow_list() {
    let net = |body: &str| format!("{MINIMAL}[network]\n{body}");
    assert_eq!(
        one(&net("allow_cidrs = [\"10.0.0.0/8\"]\ndns = \"shut\"\n")),
        "6:7 network.dns: `shut` is not one of \"closed\" or \"open\""
    );
    for dns in ["open", "closed"] {
        assert_eq!(
            one(&net(&format!("dns = \"{dns}\"\n"))),
            "5:7 network.dns: has no effect without an allow-list: a spec without \
             `allow_cidrs` or `allow_hosts` has no network at all"
        );
    }
    assert_eq!(
        one(&net("allow_hosts = [\"proxy\"]\ndns = \"open\"\n")),
        "6:7 network.dns: cannot be \"open\" with `allow_hosts`: given host names, \
         smolvm answers DNS queries for those names only"
    );
}

#[test]
fn places_locate_env_entries_and_allow_lists() {
    let text = format!("{MINIMAL}[network]\nallow_hosts = [\"p\"]\n[env]\nB = \"2\"\nA = \"1\"\n");
    let s = parse(Path::new("/specs/s.toml"), &text).unwrap();
    let env: Vec<(&str, usize)> = s
        .places
        .env
        .iter()
        .map(|(k, at)| (k.as_str(), at.line))
        .collect();
    assert_eq!(env, [("A", 8), ("B", 7)]);
    assert_eq!(
        s.places.allow_hosts.as_ref().map(|l| (l.line, l.column)),
        Some((5, 16))
    );
    assert_eq!(s.places.allow_cidrs, None);
    assert_eq!((s.places.file.line, s.places.file.column), (1, 1));
}

#[test]
fn env_keys_and_values_are_checked() {
    let key = one(&format!("{MINIMAL}[env]\n\"1BAD\" = \"x\"\n"));
    assert!(
        key.starts_with("5:1 env.1BAD: `1BAD` is not a valid variable name"),
        "{key}"
    );
    let nul = one(&format!("{MINIMAL}[env]\nA = \"a\\u0000b\"\n"));
    assert_eq!(nul, "5:5 env.A: must not contain a NUL character");
    let exec_key = one(&format!(
        "{MINIMAL}[[exec]]\nrun = [\"true\"]\nenv = {{ \"A-B\" = \"x\" }}\n"
    ));
    assert!(
        exec_key.starts_with("6:9 exec[0].env.A-B: `A-B` is not a valid variable name"),
        "{exec_key}"
    );
}

#[test]
fn copies_need_an_absolute_destination() {
    let got = one(&format!(
        "{MINIMAL}[[copy]]\nsrc = \"a\"\ndest = \"workspace\"\n"
    ));
    assert_eq!(
        got,
        "6:8 copy[0].dest: `workspace` must be an absolute guest path (starting with `/`)"
    );
}

#[test]
fn exec_needs_a_command_and_valid_options() {
    let empty = one(&format!("{MINIMAL}[[exec]]\nrun = []\n"));
    assert_eq!(empty, "5:7 exec[0].run: must name a command");
    let workdir = one(&format!(
        "{MINIMAL}[[exec]]\nrun = [\"ls\"]\nworkdir = \"rel\"\n"
    ));
    assert_eq!(
        workdir,
        "6:11 exec[0].workdir: `rel` must be an absolute guest path (starting with `/`)"
    );
    let zero = one(&format!(
        "{MINIMAL}[[exec]]\nrun = [\"ls\"]\ntimeout = \"0s\"\n"
    ));
    assert_eq!(zero, "6:11 exec[0].timeout: must be greater than zero");
}

#[test]
fn durations_need_units() {
    let got = one(&format!("{MINIMAL}[ready]\ntimeout = \"30\"\n"));
    assert!(
        got.starts_with("5:11 ready.timeout: `30` is not a duration like \"30s\" or \"2m\""),
        "{got}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems("name = \"-a\"\n[image]\nref = \"-b\"\n[network]\nallow_cidrs = [\"x\"]\n");
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["name", "image.ref", "network.allow_cidrs[0]"]);
}

#[test]
fn errors_render_with_file_line_column_and_a_caret() {
    let err = parse(
        Path::new("specs/x.toml"),
        "name = \"-vm\"\n[image]\nref = \"a\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        "specs/x.toml:1:8: `name`: must start with a letter or digit\n  |\n1 | name = \"-vm\"\n  |        ^"
    );
}

/// The key of every kind of problem, as `line:col key`.
mod keys {
    use super::*;

    /// Every problem of `text` as `line:col key`, in the order returned.
    fn keys(text: &str) -> Vec<String> {
        problems(text)
            .iter()
            .map(|p| format!("{}:{} {}", p.at.line, p.at.column, p.key))
            .collect()
    }

    #[test]
    fn unknown_keys_are_named_where_they_stand() {
        let ready = format!("{MINIMAL}[ready]\ntimeuot = \"5s\"\n");
        assert_eq!(keys(&ready), ["5:1 ready.timeuot"]);
        let exec = format!(
            "{MINIMAL}[[exec]]\nrun = [\"a\"]\n[[exec]]\nrun = [\"b\"]\nworkdri = \"/w\"\n"
        );
        assert_eq!(keys(&exec), ["8:1 exec[1].workdri"]);
        let secret = format!("{MINIMAL}[secrets.TOKEN]\nfrom_env = \"X\"\nfrom_vault = \"y\"\n");
        assert_eq!(keys(&secret), ["6:1 secrets.TOKEN.from_vault"]);
        let quoted = format!("{MINIMAL}[ready]\n\"time out\" = \"5s\"\n");
        assert_eq!(keys(&quoted), ["5:1 ready.\"time out\""]);
        assert_eq!(keys(&format!("{MINIMAL}[volumes]\n")), ["4:2 volumes"]);
    }

    #[test]
    fn values_of_the_wrong_type_are_named_down_to_the_element() {
        let cidr = format!("{MINIMAL}[network]\nallow_cidrs = [\"10.0.0.0/8\", 5]\n");
        assert_eq!(keys(&cidr), ["5:30 network.allow_cidrs[1]"]);
        let workdir =
            format!("{MINIMAL}[[exec]]\nrun = [\"a\"]\n[[exec]]\nrun = [\"b\"]\nworkdir = 5\n");
        assert_eq!(keys(&workdir), ["8:11 exec[1].workdir"]);
        assert_eq!(keys(&format!("{MINIMAL}[env]\nA = 5\n")), ["5:5 env.A"]);
        let exec_env = format!("{MINIMAL}[[exec]]\nrun = [\"a\"]\nenv = {{ \"A B\" = 1 }}\n");
        assert_eq!(keys(&exec_env), ["6:17 exec[0].env.\"A B\""]);
        let secret = format!("{MINIMAL}[secrets]\nTOKEN = {{ from_env = 5 }}\n");
        assert_eq!(keys(&secret), ["5:22 secrets.TOKEN.from_env"]);
        assert_eq!(keys("name = \"vm\"\nimage = 5\n"), ["2:9 image"]);
        let ty = one("name = \"vm\"\nimage = 5\n");
        assert!(
            ty.ends_with("invalid type: integer `5`, expected a table"),
            "{ty}"
        );
    }

    #[test]
    fn missing_fields_are_named_at_their_table() {
        let copy = format!("{MINIMAL}[[copy]]\nsrc = \"a\"\n");
        assert_eq!(one(&copy), "4:1 copy[0].dest: missing field `dest`");
        let exec = format!("{MINIMAL}[[exec]]\nworkdir = \"/w\"\n");
        assert_eq!(one(&exec), "4:1 exec[0].run: missing field `run`");
        assert_eq!(keys("[image]\nref = \"a\"\n"), ["1:1 name"]);
        assert_eq!(keys("name = \"vm\"\n"), ["1:1 image"]);
    }

    #[test]
    fn syntax_errors_are_named_by_the_key_or_table_they_are_in() {
        assert_eq!(keys("name = \"vm\"\n[image]\nref = \n"), ["3:7 image.ref"]);
        let dup = keys("name = \"vm\"\nname = \"x\"\n[image]\nref = \"a\"\n");
        assert_eq!(dup, ["2:1 name"]);
        let dup_in_table = keys(&format!("{MINIMAL}ref = \"b\"\n"));
        assert_eq!(dup_in_table, ["4:1 image.ref"]);
        let array = keys(&format!("{MINIMAL}[[exec]]\nrun = [\"a\",\n"));
        assert_eq!(array, ["5:12 exec[0].run"]);
        assert_eq!(keys(&format!("{MINIMAL}[ready\n")), ["4:7 ready"]);
        let bare = keys(&format!("{MINIMAL}[env]\nA = \"x\"\nB C\n"));
        assert!(bare.iter().all(|k| k.ends_with(" env")), "{bare:?}");
        assert_eq!(keys("name = \"vm\"\n= 5\n"), ["2:1 "]);
    }

    #[test]
    fn every_syntax_error_is_reported_in_source_order() {
        let text = "name = \"vm\"\n[image]\nref = alpine\n[env]\nA = \"open\nB = 1 2\n[ready\n";
        assert_eq!(
            keys(text),
            ["3:7 image.ref", "5:10 env.A", "6:5 env.B", "7:7 ready"]
        );
    }

    #[test]
    fn unknown_keys_do_not_hide_other_problems() {
        let text = "name = \"-vm\"\nnmae = 1\n[image]\nref = \"a\"\ntag = 3\n[[exec]]\nrun = []\n";
        assert_eq!(
            keys(text),
            ["1:8 name", "2:1 nmae", "5:1 image.tag", "7:7 exec[0].run"]
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_stops_validation_but_not_the_shape_check() {
        let text =
            "name = 5\nbogus = 1\n[image]\nref = \"-a\"\n[[exec]]\nrun = \"ls\"\ntimeout = 3\n";
        assert_eq!(
            keys(text),
            [
                "1:8 name",
                "2:1 bogus",
                "6:7 exec[0].run",
                "7:11 exec[0].timeout"
            ]
        );
    }
}

/// Problems are returned in source order and shown at most [`MAX_SHOWN`]
/// at a time.
mod order_and_cap {
    use super::*;
    use crate::spec::error::MAX_SHOWN;

    #[test]
    fn problems_found_out_of_order_are_returned_in_source_order() {
        let text = "name = \"vm\"\n[[exec]]\nrun = [\"ls\"]\nworkdir = \"rel\"\n[ready]\ntimeout = \"x\"\n[network]\nallow_cidrs = [\"10.0.0.1/8\", \"y\"]\n[image]\nref = \"-f\"\n";
        let got: Vec<_> = problems(text)
            .iter()
            .map(|p| format!("{}:{} {}", p.at.line, p.at.column, p.key))
            .collect();
        assert_eq!(
            got,
            [
                "4:11 exec[0].workdir",
                "6:11 ready.timeout",
                "8:16 network.allow_cidrs[0]",
                "8:30 network.allow_cidrs[1]",
                "10:7 image.ref",
            ]
        );
    }

    fn with_bad_cidrs(n: usize) -> SpecError {
        let cidrs: Vec<String> = (0..n).map(|i| format!("\"10.0.{i}.1/16\"")).collect();
        let text = format!(
            "{MINIMAL}[network]\nallow_cidrs = [\n{}\n]\n",
            cidrs.join(",\n")
        );
        parse(Path::new("/s/x.toml"), &text).unwrap_err()
    }

    #[test]
    fn more_than_the_cap_are_counted_not_shown() {
        let err = with_bad_cidrs(MAX_SHOWN + 3);
        assert_eq!(err.problems().len(), MAX_SHOWN + 3, "all are kept");
        let text = err.to_string();
        assert_eq!(text.matches("\nerror: ").count(), MAX_SHOWN - 1);
        assert!(text.ends_with(" ^\n… and 3 more problems"), "{text}");
        assert!(text.contains("`network.allow_cidrs[19]`"));
        assert!(!text.contains("`network.allow_cidrs[20]`"));
        let one_more = with_bad_cidrs(MAX_SHOWN + 1).to_string();
        assert!(one_more.ends_with("\n… and 1 more problem"), "{one_more}");
        let at_cap = with_bad_cidrs(MAX_SHOWN).to_string();
        assert!(!at_cap.contains("more problem"), "{at_cap}");
        assert!(at_cap.ends_with('^'));
    }
}

/// How a source line is shown: escaped, and cut around the caret if long.
mod snippets {
    use super::*;
    use crate::spec::location::{MAX_SNIPPET_WIDTH, Snippet};

    /// The character the caret points at in `s`.
    fn under_caret(s: &Snippet) -> Option<char> {
        s.line.chars().nth(s.caret)
    }

    #[test]
    fn short_lines_are_shown_whole() {
        let s = Snippet::new("name = \"-vm\"", 7);
        assert_eq!((s.line.as_str(), s.caret), ("name = \"-vm\"", 7));
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let mut line: Vec<char> = "-".repeat(400).chars().collect();
        line[200] = 'X';
        let line: String = line.into_iter().collect();
        let s = Snippet::new(&line, 200);
        assert!(
            s.line.starts_with('…') && s.line.ends_with('…'),
            "{}",
            s.line
        );
        assert_eq!(s.line.chars().count(), MAX_SNIPPET_WIDTH);
        assert_eq!(under_caret(&s), Some('X'));
        assert!(
            (55..=65).contains(&s.caret),
            "caret near the middle: {}",
            s.caret
        );
    }

    #[test]
    fn a_caret_near_either_end_cuts_one_side_only() {
        let line = format!("ab{}", "-".repeat(300));
        let start = Snippet::new(&line, 1);
        assert_eq!((start.caret, under_caret(&start)), (1, Some('b')));
        assert!(!start.line.starts_with('…') && start.line.ends_with('…'));
        assert_eq!(start.line.chars().count(), MAX_SNIPPET_WIDTH - 1);
        let line = format!("{}yz", "-".repeat(300));
        let end = Snippet::new(&line, 302);
        assert!(end.line.starts_with('…') && !end.line.ends_with('…'));
        assert!(end.line.ends_with("yz"));
        assert_eq!(end.caret, end.line.chars().count(), "just after the line");
    }

    #[test]
    fn control_characters_are_escaped_and_the_caret_follows() {
        let s = Snippet::new("A = \"\u{1b}[31mred\u{7}\tz\"", 15);
        assert_eq!(s.line, "A = \"\\x1b[31mred\\x07\\tz\"");
        assert_eq!(under_caret(&s), Some('z'));
        let bidi = Snippet::new("a\u{202e}b", 2);
        assert_eq!(
            (bidi.line.as_str(), under_caret(&bidi)),
            ("a\\u{202e}b", Some('b'))
        );
        let c1 = Snippet::new("\u{9b}x", 1);
        assert_eq!(
            (c1.line.as_str(), under_caret(&c1)),
            ("\\u{9b}x", Some('x'))
        );
    }

    #[test]
    fn escapes_are_never_cut_in_half() {
        let line = "\u{1b}".repeat(200);
        let s = Snippet::new(&line, 100);
        let inner = s.line.trim_matches('…');
        assert!(
            inner.starts_with("\\x1b") && inner.len().is_multiple_of(4),
            "{}",
            s.line
        );
        assert_eq!(under_caret(&s), Some('\\'));
    }

    #[test]
    fn keys_and_messages_are_escaped_too() {
        let text = format!("{MINIMAL}[network]\nallow_cidrs = [\"\\u001b[2J\"]\n");
        let err = parse(Path::new("/s/x.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
        assert!(err.contains("`\\x1b[2J` is not a CIDR"), "{err}");
    }
}

mod resolving {
    use std::os::unix::net::UnixListener;

    use super::*;

    fn spec_in(dir: &Path, body: &str) -> Result<Desired, SpecError> {
        let file = dir.join("s.toml");
        std::fs::write(&file, format!("{MINIMAL}{body}")).unwrap();
        load(&file).and_then(resolve)
    }

    fn only_problem(r: Result<Desired, SpecError>) -> Problem {
        let err = r.expect_err("an error");
        assert_eq!(err.problems().len(), 1, "{err}");
        err.problems()[0].clone()
    }

    #[test]
    fn directories_are_walked_in_name_order() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("ws/b")).unwrap();
        std::fs::write(tmp.path().join("ws/b/z"), "z").unwrap();
        std::fs::write(tmp.path().join("ws/a"), "a").unwrap();
        let d = spec_in(tmp.path(), "[[copy]]\nsrc = \"ws\"\ndest = \"/w/\"\n").unwrap();
        let guests: Vec<&str> = d.files.iter().map(|f| f.guest.as_str()).collect();
        assert_eq!(guests, ["/w/a", "/w/b/z"]);
        assert!(d.files.iter().all(|f| f.host.as_str().starts_with('/')));
    }

    #[test]
    fn a_missing_source_is_located() {
        let tmp = tempfile::tempdir().unwrap();
        let p = only_problem(spec_in(
            tmp.path(),
            "[[copy]]\nsrc = \"nope\"\ndest = \"/w\"\n",
        ));
        assert_eq!(
            (p.at.line, p.at.column, p.key.as_str()),
            (5, 7, "copy[0].src")
        );
        assert!(p.message.ends_with("nope does not exist"), "{}", p.message);
    }

    #[test]
    fn a_colon_in_a_source_path_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a:b"), "x").unwrap();
        let p = only_problem(spec_in(
            tmp.path(),
            "[[copy]]\nsrc = \"a:b\"\ndest = \"/w\"\n",
        ));
        assert!(p.message.contains("contains `:`"), "{}", p.message);
    }

    #[test]
    fn sockets_and_fifos_inside_a_source_are_refused_located_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("ws/a")).unwrap();
        let _l = UnixListener::bind(tmp.path().join("ws/a/sock")).unwrap();
        let p = only_problem(spec_in(
            tmp.path(),
            "[[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n",
        ));
        assert_eq!(
            (p.at.line, p.at.column, p.key.as_str()),
            (5, 7, "copy[0].src")
        );
        let sock = tmp.path().join("ws/a/sock");
        assert_eq!(
            p.message,
            format!(
                "{} is a socket (devices, fifos and sockets are not copied)",
                sock.display()
            )
        );
        std::fs::remove_file(&sock).unwrap();
        let fifo = tmp.path().join("ws/a/fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let p = only_problem(spec_in(
            tmp.path(),
            "[[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n",
        ));
        assert!(
            p.message
                .starts_with(&format!("{} is a fifo", fifo.display())),
            "{}",
            p.message
        );
    }

    /// A tree with a link to a secret next to it, and one pointing up.
    fn tree_with_links(dir: &Path) {
        std::fs::write(dir.join("secret.txt"), "CANARY-7f3a").unwrap();
        std::fs::create_dir_all(dir.join("ws/sub")).unwrap();
        std::fs::write(dir.join("ws/sub/a.txt"), "abc").unwrap();
        std::os::unix::fs::symlink("../secret.txt", dir.join("ws/notes.txt")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("ws/sub/up")).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("ws/sub/same")).unwrap();
    }

    #[test]
    fn each_copy_s_files_and_links_are_found_by_its_index() {
        let tmp = tempfile::tempdir().unwrap();
        tree_with_links(tmp.path());
        std::fs::write(tmp.path().join("f"), "f").unwrap();
        let copies = "[[copy]]\nsrc = \"f\"\ndest = \"/f\"\n\
                      [[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n\
                      [[copy]]\nsrc = \"f\"\ndest = \"/g\"\n";
        let d = spec_in(tmp.path(), copies).unwrap();
        let guest = |i| -> Vec<&str> { d.files_of(i).iter().map(|f| f.guest.as_str()).collect() };
        assert_eq!(guest(0), ["/f"]);
        assert_eq!(
            guest(1),
            ["/w/notes.txt", "/w/sub/a.txt", "/w/sub/same", "/w/sub/up"],
            "one file and three links"
        );
        assert_eq!(guest(2), ["/g"]);
    }

    #[test]
    fn links_inside_a_source_are_copied_as_links_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        tree_with_links(tmp.path());
        let d = spec_in(tmp.path(), "[[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n").unwrap();
        let got: Vec<(&str, &CopyKind)> = d
            .files
            .iter()
            .map(|f| (f.guest.as_str(), &f.kind))
            .collect();
        let link = |t: &str| CopyKind::Link { target: t.into() };
        let meta = std::fs::metadata(tmp.path().join("ws/sub/a.txt")).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        assert_eq!(
            got,
            [
                ("/w/notes.txt", &link("../secret.txt")),
                ("/w/sub/a.txt", &CopyKind::File { mode }),
                ("/w/sub/same", &link("a.txt")),
                ("/w/sub/up", &link("..")),
            ]
        );
        let summary = &d.copies[0];
        assert_eq!((summary.files, summary.links, summary.bytes), (1, 3, 3));
        let leaving: Vec<(&str, &str)> = summary
            .leaving
            .iter()
            .map(|l| (l.link.as_str(), l.target.as_str()))
            .collect();
        assert_eq!(leaving, [("/w/notes.txt", "../secret.txt")]);
    }

    #[test]
    fn a_link_s_target_text_is_part_of_the_fingerprint() {
        let tmp = tempfile::tempdir().unwrap();
        tree_with_links(tmp.path());
        let copy = "[[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n";
        let a = spec_in(tmp.path(), copy).unwrap().fingerprint;
        std::fs::write(tmp.path().join("secret.txt"), "other").unwrap();
        assert_eq!(
            spec_in(tmp.path(), copy).unwrap().fingerprint,
            a,
            "targets are not read"
        );
        let notes = tmp.path().join("ws/notes.txt");
        std::fs::remove_file(&notes).unwrap();
        std::os::unix::fs::symlink("../secret.tx", &notes).unwrap();
        let b = spec_in(tmp.path(), copy).unwrap().fingerprint;
        assert_eq!(b.changed(&a), [Field::Copy]);
        std::fs::remove_file(&notes).unwrap();
        std::fs::write(&notes, "../secret.tx").unwrap();
        let c = spec_in(tmp.path(), copy).unwrap().fingerprint;
        assert_eq!(c.changed(&b), [Field::Copy], "a file is not a link");
    }

    #[test]
    fn a_source_that_is_a_symlink_is_resolved_once_and_shown() {
        let tmp = tempfile::tempdir().unwrap();
        tree_with_links(tmp.path());
        std::os::unix::fs::symlink("ws", tmp.path().join("current")).unwrap();
        let d = spec_in(tmp.path(), "[[copy]]\nsrc = \"current\"\ndest = \"/w\"\n").unwrap();
        let real = std::fs::canonicalize(tmp.path().join("ws")).unwrap();
        assert_eq!(d.copies[0].resolved.as_deref(), Some(real.as_path()));
        assert_eq!(d.copies[0].src, tmp.path().join("current"));
        assert!(d.files.iter().all(|f| f.host.as_path().starts_with(&real)));
        assert_eq!(d.files.len(), 4);
        std::os::unix::fs::symlink("secret.txt", tmp.path().join("key")).unwrap();
        let d = spec_in(tmp.path(), "[[copy]]\nsrc = \"key\"\ndest = \"/k\"\n").unwrap();
        assert!(
            matches!(d.files[0].kind, CopyKind::File { .. }),
            "a src link to a file copies the file"
        );
        assert_eq!(d.copies[0].bytes, 11);
    }

    #[test]
    fn a_source_symlink_loop_or_dangling_link_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("loop", tmp.path().join("loop")).unwrap();
        let p = only_problem(spec_in(
            tmp.path(),
            "[[copy]]\nsrc = \"loop\"\ndest = \"/w\"\n",
        ));
        assert!(
            p.message.ends_with("loop is a symlink loop"),
            "{}",
            p.message
        );
        std::os::unix::fs::symlink("nowhere", tmp.path().join("dangling")).unwrap();
        let p = only_problem(spec_in(
            tmp.path(),
            "[[copy]]\nsrc = \"dangling\"\ndest = \"/w\"\n",
        ));
        assert!(
            p.message
                .ends_with("dangling is a symlink to nothing (its target does not exist)"),
            "{}",
            p.message
        );
    }

    #[test]
    fn a_missing_pack_is_located() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("s.toml");
        std::fs::write(&file, "name = \"vm\"\n[image]\npack = \"x.smolmachine\"\n").unwrap();
        let p = only_problem(load(&file).and_then(resolve));
        assert_eq!((p.at.line, p.key.as_str()), (3, "image.pack"));
        assert!(
            p.message.ends_with("x.smolmachine does not exist"),
            "{}",
            p.message
        );
    }

    #[test]
    fn the_fingerprint_follows_what_shapes_the_vm() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), "one").unwrap();
        let copy = "[[copy]]\nsrc = \"f\"\ndest = \"/f\"\n";
        let a = spec_in(tmp.path(), copy).unwrap().fingerprint;
        assert_eq!(a, spec_in(tmp.path(), copy).unwrap().fingerprint);
        std::fs::write(tmp.path().join("f"), "two").unwrap();
        let b = spec_in(tmp.path(), copy).unwrap().fingerprint;
        assert_eq!(b.changed(&a), [Field::Copy]);
        let c = spec_in(tmp.path(), &format!("{copy}[env]\nA = \"1\"\n"))
            .unwrap()
            .fingerprint;
        assert_eq!(c.changed(&b), [Field::Env]);
        let d = spec_in(tmp.path(), &format!("{copy}[ready]\ntimeout = \"5s\"\n"))
            .unwrap()
            .fingerprint;
        assert_eq!(d, b, "readiness does not shape the VM");
        assert_ne!(a.hash(), b.hash());
    }

    /// The network's meaning is hashed: an absent `dns` is `closed`, the
    /// allow-list is a set. The first form hashed a spec without
    /// `allow_hosts` and `dns` by its CIDRs alone, and still does (for
    /// schema-1 records).
    #[test]
    fn dns_and_allow_hosts_shape_the_network_fingerprint() {
        let tmp = tempfile::tempdir().unwrap();
        let net = |body: &str| {
            let text = format!("[network]\nallow_cidrs = [\"10.0.0.0/8\"]\n{body}");
            spec_in(tmp.path(), &text).unwrap()
        };
        let keyless = net("");
        let cidrs: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            keyless.legacy().unwrap().network,
            legacy::hash_debug(&cidrs)
        );
        let closed = net("dns = \"closed\"\n");
        assert_ne!(
            closed.legacy().unwrap().network,
            keyless.legacy().unwrap().network
        );
        let (keyless, closed) = (keyless.fingerprint, closed.fingerprint);
        assert_eq!(closed, keyless, "closed is the default");
        let open = net("dns = \"open\"\n").fingerprint;
        assert_eq!(open.changed(&closed), [Field::Network]);
        let hosts = net("allow_hosts = [\"proxy\"]\n").fingerprint;
        assert_eq!(hosts.changed(&closed), [Field::Network]);
        assert_eq!(
            hosts,
            net("allow_hosts = [\"PROXY\"]\ndns = \"closed\"\n").fingerprint
        );
        let two = |cidrs: &str| {
            let text = format!("[network]\nallow_cidrs = {cidrs}\n");
            spec_in(tmp.path(), &text).unwrap().fingerprint
        };
        assert_eq!(
            two(r#"["10.0.0.0/8", "192.168.1.0/24"]"#),
            two(r#"["192.168.1.0/24", "10.0.0.0/8"]"#),
            "the allow-list is a set"
        );
    }

    /// Each exec step hashes on its own, so a new or changed step can be
    /// told apart from the ones that ran; the readiness timeout and the
    /// copy mode are not part of the fingerprint.
    #[test]
    fn exec_steps_hash_one_by_one() {
        let tmp = tempfile::tempdir().unwrap();
        let one = "[[exec]]\nrun = [\"a\"]\n";
        let two = "[[exec]]\nrun = [\"b\"]\ntimeout = \"30s\"\n";
        let a = spec_in(tmp.path(), one).unwrap().fingerprint;
        let ab = spec_in(tmp.path(), &format!("{one}{two}"))
            .unwrap()
            .fingerprint;
        assert_eq!(ab.execs.len(), 2);
        assert_eq!(ab.execs[0], a.execs[0]);
        assert_eq!(ab.changed(&a), [Field::Exec]);
        let slower = two.replace("30s", "31s");
        let ab2 = spec_in(tmp.path(), &format!("{one}{slower}"))
            .unwrap()
            .fingerprint;
        assert_ne!(ab2.execs[1], ab.execs[1], "the timeout is the step's");
        let file = tmp.path().join("cp.toml");
        std::fs::write(&file, format!("copy_via = \"cp\"\n{MINIMAL}{one}")).unwrap();
        let via_cp = load(&file).and_then(resolve).unwrap().fingerprint;
        assert_eq!(via_cp, a, "how copies travel does not shape the VM");
    }
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    const BUNDLED: [&str; 2] = [
        include_str!("../../specs/agent.toml"),
        include_str!("../../specs/hello.toml"),
    ];

    /// Every problem points inside the text it came from.
    fn located_inside(text: &str, result: Result<Spec, SpecError>) -> Result<(), TestCaseError> {
        let lines = text.split('\n').count();
        for p in result.err().iter().flat_map(|e| e.problems()) {
            prop_assert!(
                p.at.line >= 1 && p.at.line <= lines,
                "{p:?} in {lines} lines"
            );
            prop_assert!(p.at.column >= 1);
            prop_assert!(!p.message.is_empty());
        }
        Ok(())
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Delete(usize, usize),
        Insert(usize, String),
        DuplicateLine(usize),
        SwapLines(usize, usize),
    }

    fn arb_mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 0..12usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
            (any::<usize>(), "[\\[\\]=\"'#.,{}a-z0-9 \\n\\\\:/-]{1,8}")
                .prop_map(|(at, s)| Mutation::Insert(at, s)),
            any::<usize>().prop_map(Mutation::DuplicateLine),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        ]
    }

    fn boundary(text: &str, at: usize) -> usize {
        let mut i = at % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    fn mutate(text: &str, m: &Mutation) -> String {
        let mut lines: Vec<&str> = text.split('\n').collect();
        match m {
            Mutation::Delete(at, n) => {
                let from = boundary(text, *at);
                let to = boundary(text, from + n);
                format!("{}{}", &text[..from], &text[to.max(from)..])
            }
            Mutation::Insert(at, s) => {
                let at = boundary(text, *at);
                format!("{}{s}{}", &text[..at], &text[at..])
            }
            Mutation::DuplicateLine(i) => {
                let i = i % lines.len();
                lines.insert(i, lines[i]);
                lines.join("\n")
            }
            Mutation::SwapLines(a, b) => {
                let n = lines.len();
                lines.swap(a % n, b % n);
                lines.join("\n")
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let r = parse(Path::new("/s/x.toml"), &text);
            located_inside(&text, r)?;
        }

        #[test]
        fn toml_shaped_text_never_panics(text in "(name|image|ref|pack|\\[image\\]|\\[\\[exec\\]\\]|run|env|=|\"[a-z:/-]{0,6}\"|\\[|\\]|,|\\n| ){0,40}") {
            let r = parse(Path::new("/s/x.toml"), &text);
            located_inside(&text, r)?;
        }

        #[test]
        fn mutated_bundled_specs_never_panic(which in 0..2usize, ms in proptest::collection::vec(arb_mutation(), 1..4)) {
            let text = ms.iter().fold(BUNDLED[which].to_string(), |t, m| mutate(&t, m));
            let r = parse(Path::new("/s/x.toml"), &text);
            located_inside(&text, r)?;
        }
    }

    #[test]
    fn the_bundled_specs_are_valid() {
        for text in BUNDLED {
            parse(Path::new("/work/specs/x.toml"), text).expect("valid");
        }
    }
}

/// A spec using every field.
const EVERY_FIELD: &str = r#"
name = "agent-xyz"
[image]
ref = "img:1"
[network]
allow_cidrs = ["192.168.50.2/32", "10.1.0.0/16"]
[env]
HTTPS_PROXY = "http://192.168.50.2:8888"
B = "2"
[[copy]]
src = "f"
dest = "/workspace/f"
[secrets]
API = { from_env = "PATH" }
[[exec]]
run = ["sh", "-c", "true"]
workdir = "/workspace"
env = { GIT_PAGER = "cat" }
timeout = "30s"
secrets = ["API"]
"#;

/// The fingerprint of a spec using every field is pinned, in both forms: a
/// change of the current form would replace machines on the next apply,
/// so it must be deliberate and come with a new FINGERPRINT_VERSION and a
/// migration; the first form must never change, or schema-1 records would
/// stop matching their specs.
#[test]
fn fingerprints_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "content\n").unwrap();
    let path = dir.path().join("s.toml");
    let d = resolve(parse(&path, EVERY_FIELD).unwrap()).unwrap();
    let short = |h: &str| h[..16].to_string();
    let l = &d.legacy().unwrap();
    let got = [&l.image, &l.network, &l.env, &l.exec, &l.copy, &l.secrets].map(|h| short(h));
    assert_eq!(
        got.join(" "),
        "ed57dea79811527d 9a9d30e26a7fa13d c09405a53e6ba599 1ea36bb4ed2c88eb 21acb4570957f99e d538d7ab2b35a4fe"
    );
    let f = &d.fingerprint;
    let got = [
        &f.image,
        &f.network,
        &f.env,
        &f.secrets,
        &f.copies[0].hash,
        &f.execs[0],
    ]
    .map(|h| short(h));
    assert_eq!(
        got.join(" "),
        "2460ec6d344618ad 957889966ae01176 4f353369445c8acf 0ecc4cc7e60ba028 2326c201fcaa2279 488e2f7bc1a2e15d"
    );
    assert_eq!(short(&f.hash()), "b6023669d0cf1562");
}

/// The bundled specs' fingerprints are pinned (with the files they copy):
/// upgrading bottle must not change them.
#[test]
fn the_bundled_specs_fingerprints_are_pinned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let got: Vec<String> = ["specs/agent.toml", "specs/hello.toml"]
        .iter()
        .map(|p| {
            let d = crate::spec::load(&root.join(p)).and_then(resolve).unwrap();
            format!("{p} {}", &d.fingerprint.hash()[..16])
        })
        .collect();
    assert_eq!(
        got,
        [
            "specs/agent.toml 44c0fd88942abe56",
            "specs/hello.toml 6391c50a6a483a81"
        ]
    );
}

/// The first form of a spec with a pack and a copied link is pinned too:
/// it is read again from the host, by code apart from the walk.
#[test]
fn the_first_form_of_packs_and_links_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.smolmachine"), "pack bytes").unwrap();
    std::fs::create_dir(dir.path().join("ws")).unwrap();
    std::fs::write(dir.path().join("ws/a"), "a\n").unwrap();
    std::os::unix::fs::symlink("../elsewhere", dir.path().join("ws/l")).unwrap();
    let text = "name = \"vm\"\n[image]\npack = \"p.smolmachine\"\n\
                [[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n";
    let d = resolve(parse(&dir.path().join("s.toml"), text).unwrap()).unwrap();
    let l = d.legacy().unwrap();
    let path = dir.path().join("p.smolmachine");
    let mut h = blake3::Hasher::new();
    h.update(b"pack\n");
    h.update(path.as_os_str().as_encoded_bytes());
    h.update(b"pack bytes");
    assert_eq!(
        l.image,
        h.finalize().to_hex().to_string(),
        "path and content"
    );
    assert_eq!(
        &l.copy[..16],
        "4145d54899057f08",
        "as bottle 0.1.0 hashed them"
    );
}
