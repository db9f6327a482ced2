//! What a copy moves: the guest view of a spec's copies, and what must be
//! sent and removed to bring the guest from one view to another.
//!
//! The guest view is every path the copies make, with what each puts
//! there (`file MODE SIZE HASH` or `link TARGET`) and the copy that puts
//! it: the last one in spec order, as the guest holds it once every copy
//! was unpacked in order. A transfer sends each path whose entry differs
//! from the view the machine has (every path, for a new machine), and
//! removes each path bottle sent before that no copy makes any more
//! (pruning), unless told to keep them. A kept path is in the way of a
//! sent one when it is a file where a sent path needs a directory, or a
//! path under a sent file or link: it is removed all the same. After the
//! removals, the directories that held a removed path (up to the
//! destination of the copy that had sent it, which is one of them once no
//! copy has it) and that no copy needs any more are removed where empty, deepest first: the directories
//! bottle made go with the files it made, a sent file can take the place of
//! a directory that held only removed paths, and a directory the agent put
//! files in stays (then a file that should take its place cannot, and the
//! update fails there, destroying nothing).
//!
//! Pure: it compares two lists of prints and touches nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::CopyPrint;

/// The entry a record gives a path it is removing (see
/// `reconcile::execute`): no copy ever puts it, so the path is sent again
/// if a copy makes it, and removed again otherwise, until a transfer
/// completes.
pub const REMOVING: &str = "removing";

/// What one path of the guest view holds, and which copy puts it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed<'a> {
    /// The index of the copy in the spec.
    pub copy: usize,
    /// `file MODE SIZE HASH` or `link TARGET`.
    pub entry: &'a str,
}

/// Every path `copies` make in the guest, with what is there once they
/// are all unpacked in order (a later copy's entry wins).
pub fn view(copies: &[CopyPrint]) -> BTreeMap<&str, Placed<'_>> {
    let mut out = BTreeMap::new();
    for (copy, c) in copies.iter().enumerate() {
        for (path, entry) in &c.entries {
            out.insert(path.as_str(), Placed { copy, entry });
        }
    }
    out
}

/// What an apply sends into the guest and removes from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transfer {
    /// The paths to send, each with the copy it is read from (its index in
    /// the spec), in spec order, then path order. Each path is sent once,
    /// from the copy whose entry the guest holds in the end.
    pub send: Vec<(usize, String)>,
    /// The paths to remove before anything is sent: ones bottle sent that
    /// no copy makes any more (with pruning), and ones in the way.
    pub remove: Vec<String>,
    /// Directories to remove after `remove` where they are empty, deepest
    /// first: each held a removed path and no copy needs it any more.
    pub clear: Vec<String>,
    /// Paths no copy makes any more, left in the guest (no pruning); from
    /// then on they are the guest's own files, not bottle's.
    pub kept: Vec<String>,
}

impl Transfer {
    /// Whether anything is removed from the guest (before anything is
    /// sent).
    pub fn prunes(&self) -> bool {
        !(self.remove.is_empty() && self.clear.is_empty())
    }
}

/// The transfer that brings a guest holding `applied` to `want`.
/// `prune`: remove what no copy makes any more.
pub fn transfer(want: &[CopyPrint], applied: &[CopyPrint], prune: bool) -> Transfer {
    let (wanted, had) = (view(want), view(applied));
    let mut send: Vec<(usize, String)> = wanted
        .iter()
        .filter(|(path, p)| had.get(*path).is_none_or(|h| h.entry != p.entry))
        .map(|(path, p)| (p.copy, (*path).to_string()))
        .collect();
    send.sort();
    let gone = had.keys().filter(|path| !wanted.contains_key(*path));
    let sent = Sent::of(&send);
    let (remove, kept): (Vec<&str>, Vec<&str>) = gone.partition(|g| prune || sent.blocked_by(g));
    let clear = cleared(&remove, &had, applied, &needed(&wanted, want));
    Transfer {
        send,
        remove: remove.into_iter().map(str::to_string).collect(),
        clear,
        kept: kept.into_iter().map(str::to_string).collect(),
    }
}

/// The paths a transfer sends, and the directories they need.
struct Sent<'a> {
    paths: BTreeSet<&'a str>,
    dirs: BTreeSet<&'a str>,
}

impl<'a> Sent<'a> {
    fn of(send: &'a [(usize, String)]) -> Self {
        let paths: BTreeSet<&str> = send.iter().map(|(_, p)| p.as_str()).collect();
        let dirs = paths.iter().flat_map(|p| ancestors(p)).collect();
        Sent { paths, dirs }
    }

    /// Whether `gone` is in the way of a sent path: a file where a sent
    /// path needs a directory, or a path under a sent one.
    fn blocked_by(&self, gone: &str) -> bool {
        self.dirs.contains(gone) || ancestors(gone).any(|a| self.paths.contains(a))
    }
}

/// The directories `want` needs: every copy's destination and what holds
/// it, and what holds each path the copies make.
fn needed<'a>(want: &BTreeMap<&'a str, Placed<'a>>, copies: &'a [CopyPrint]) -> BTreeSet<&'a str> {
    let dests = copies.iter().map(|c| c.dest.as_str());
    let dests = dests.flat_map(|d| std::iter::once(d).chain(ancestors(d)));
    let held = want.keys().flat_map(|p| ancestors(p));
    dests.chain(held).collect()
}

/// The directories each removed path was in, up to the destination of the
/// copy that had sent it, that `needed` lacks (a destination no copy has
/// any more included); deepest first.
fn cleared(
    removed: &[&str],
    had: &BTreeMap<&str, Placed<'_>>,
    applied: &[CopyPrint],
    needed: &BTreeSet<&str>,
) -> Vec<String> {
    let mut dirs = BTreeSet::new();
    for r in removed {
        let Some(dest) = had.get(r).map(|p| applied[p.copy].dest.as_str()) else {
            continue;
        };
        let within = ancestors(r).take_while(|a| *a == dest || ancestors(a).any(|x| x == dest));
        dirs.extend(within.filter(|a| !needed.contains(a)));
    }
    dirs.into_iter().rev().map(str::to_string).collect()
}

/// The proper ancestors of an absolute guest path, nearest first, `/`
/// excluded: `/a/b/c` gives `/a/b`, `/a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut at = path;
    std::iter::from_fn(move || {
        let (parent, _) = at.rsplit_once('/')?;
        at = parent;
        (!parent.is_empty()).then_some(parent)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(dest: &str, entries: &[(&str, &str)]) -> CopyPrint {
        let entries = entries
            .iter()
            .map(|(p, e)| (p.to_string(), e.to_string()))
            .collect();
        CopyPrint::new(dest, entries)
    }

    fn sent(t: &Transfer) -> Vec<(usize, &str)> {
        t.send.iter().map(|(i, p)| (*i, p.as_str())).collect()
    }

    #[test]
    fn a_new_machine_gets_every_path_once_from_the_last_copy_that_makes_it() {
        let a = print(
            "/w",
            &[("/w/a", "file 644 1 x"), ("/w/s/b", "file 644 1 y")],
        );
        let b = print(
            "/w/s",
            &[("/w/s/b", "file 600 2 z"), ("/w/s/c", "link ../a")],
        );
        let t = transfer(&[a, b], &[], true);
        assert_eq!(sent(&t), [(0, "/w/a"), (1, "/w/s/b"), (1, "/w/s/c")]);
        assert!(t.remove.is_empty() && t.clear.is_empty() && t.kept.is_empty());
    }

    #[test]
    fn only_changed_and_new_paths_are_sent_and_gone_ones_removed() {
        let before = print(
            "/w",
            &[
                ("/w/a", "file 644 1 x"),
                ("/w/b", "file 644 1 y"),
                ("/w/c", "link a"),
            ],
        );
        let after = print(
            "/w",
            &[
                ("/w/a", "file 644 1 x"),
                ("/w/b", "file 755 1 y"),
                ("/w/d", "file 644 3 q"),
            ],
        );
        let t = transfer(
            std::slice::from_ref(&after),
            std::slice::from_ref(&before),
            true,
        );
        assert_eq!(sent(&t), [(0, "/w/b"), (0, "/w/d")]);
        assert_eq!(t.remove, ["/w/c"]);
        assert!(t.kept.is_empty());
        let kept = transfer(&[after], &[before], false);
        assert_eq!(sent(&kept), [(0, "/w/b"), (0, "/w/d")]);
        assert!(kept.remove.is_empty());
        assert_eq!(kept.kept, ["/w/c"]);
    }

    #[test]
    fn the_same_view_moves_nothing() {
        let a = print("/w", &[("/w/a", "file 644 1 x")]);
        let t = transfer(std::slice::from_ref(&a), std::slice::from_ref(&a), true);
        assert_eq!(t, Transfer::default());
        let kept = Transfer {
            kept: vec!["/x".into()],
            ..Transfer::default()
        };
        assert!(!kept.prunes(), "a kept path is not removed");
        let removing = Transfer {
            remove: vec!["/x".into()],
            ..Transfer::default()
        };
        assert!(removing.prunes());
        let clearing = Transfer {
            clear: vec!["/d".into()],
            ..Transfer::default()
        };
        assert!(clearing.prunes());
    }

    #[test]
    fn a_path_another_copy_still_makes_is_sent_from_it_not_removed() {
        let base = print("/w", &[("/w/s/f", "file 644 1 base")]);
        let over = print("/w/s", &[("/w/s/f", "file 644 1 over")]);
        let dropped = print("/w/s", &[]);
        let t = transfer(
            &[base.clone(), dropped],
            &[base.clone(), over.clone()],
            true,
        );
        assert_eq!(sent(&t), [(0, "/w/s/f")]);
        assert!(t.remove.is_empty());
        let overridden = print("/w", &[("/w/s/f", "file 644 1 new")]);
        let t = transfer(&[overridden, over.clone()], &[base, over], true);
        assert_eq!(t, Transfer::default(), "the later copy still decides");
    }

    #[test]
    fn a_removed_copy_has_its_paths_pruned() {
        let a = print("/w", &[("/w/a", "file 644 1 x")]);
        let b = print("/data", &[("/data/d", "file 644 1 y")]);
        let t = transfer(std::slice::from_ref(&a), &[a.clone(), b], true);
        assert!(t.send.is_empty());
        assert_eq!(t.remove, ["/data/d"]);
        assert_eq!(t.clear, ["/data"], "a destination no copy has any more");
    }

    #[test]
    fn a_file_that_becomes_a_directory_is_removed_even_when_kept() {
        let before = print("/w", &[("/w/a", "file 644 1 x")]);
        let after = print("/w", &[("/w/a/b", "file 644 1 y")]);
        for prune in [true, false] {
            let t = transfer(
                std::slice::from_ref(&after),
                std::slice::from_ref(&before),
                prune,
            );
            assert_eq!(sent(&t), [(0, "/w/a/b")]);
            assert_eq!(t.remove, ["/w/a"], "prune {prune}");
            assert!(t.clear.is_empty() && t.kept.is_empty());
        }
    }

    #[test]
    fn a_directory_that_becomes_a_file_is_emptied_then_removed_deepest_first() {
        let before = print(
            "/w",
            &[
                ("/w/a/x/y", "file 644 1 x"),
                ("/w/a/z", "link y"),
                ("/w/k", "file 644 1 k"),
            ],
        );
        let after = print("/w", &[("/w/a", "file 644 1 now")]);
        for prune in [true, false] {
            let t = transfer(
                std::slice::from_ref(&after),
                std::slice::from_ref(&before),
                prune,
            );
            assert_eq!(sent(&t), [(0, "/w/a")]);
            assert_eq!(t.clear, ["/w/a/x", "/w/a"], "prune {prune}");
            match prune {
                true => assert_eq!(t.remove, ["/w/a/x/y", "/w/a/z", "/w/k"]),
                false => {
                    assert_eq!(t.remove, ["/w/a/x/y", "/w/a/z"]);
                    assert_eq!(t.kept, ["/w/k"]);
                }
            }
        }
    }

    #[test]
    fn directories_a_prune_empties_go_too_but_never_a_destination_or_a_needed_one() {
        let before = print(
            "/w",
            &[
                ("/w/y", "file 644 1 y"),
                ("/w/s/a", "file 644 1 a"),
                ("/w/t/u/v", "link x"),
            ],
        );
        let some = print("/w", &[("/w/s/b", "file 644 1 b")]);
        let t = transfer(
            std::slice::from_ref(&some),
            std::slice::from_ref(&before),
            true,
        );
        assert_eq!(t.remove, ["/w/s/a", "/w/t/u/v", "/w/y"]);
        assert_eq!(
            t.clear,
            ["/w/t/u", "/w/t"],
            "/w/s is still needed, /w is the destination"
        );
        let none = print("/w", &[]);
        let t = transfer(&[none], std::slice::from_ref(&before), true);
        assert_eq!(t.clear, ["/w/t/u", "/w/t", "/w/s"]);
        let elsewhere = print("/w/t", &[("/w/t/z", "file 644 1 z")]);
        let t = transfer(&[elsewhere], &[before], true);
        assert_eq!(
            t.clear,
            ["/w/t/u", "/w/s"],
            "another copy's destination stays"
        );
    }

    #[test]
    fn a_name_that_only_shares_a_prefix_is_not_in_the_way() {
        let before = print("/w", &[("/w/ab/c", "file 644 1 x")]);
        let after = print("/w", &[("/w/a", "file 644 1 y")]);
        let t = transfer(&[after], &[before], false);
        assert_eq!(t.kept, ["/w/ab/c"]);
        assert!(t.remove.is_empty() && t.clear.is_empty());
    }

    #[test]
    fn ancestors_stop_before_the_root() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a"]);
        assert_eq!(ancestors("/a").count(), 0);
    }
}
