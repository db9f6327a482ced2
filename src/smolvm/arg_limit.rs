//! The kernel's limit on a new process's command line and environment, and
//! the measure of a call against it.
//!
//! Owns Linux's rule (`fs/exec.c`), counted as the kernel counts it: every
//! argv and envp string with its NUL, the program's path once more (the
//! kernel copies it too), and one pointer per string. The strings may take
//! a quarter of the stack size limit (`ulimit -s`), at least [`MIN_TOTAL`]
//! and at most [`MAX_TOTAL`], less the pointers; and no single string may
//! be longer than [`MAX_ARG_STRLEN`]. A call over either fails to start
//! with `E2BIG`, which this lets bottle say before anything runs.
//!
//! Pure, apart from [`ArgLimit::of_system`] and [`EnvSize::of_process`],
//! which read this process's stack limit and environment (a child smolvm
//! inherits both). Must not run anything.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The longest single argument or environment string, its NUL included:
/// 32 pages, here of 4 KiB, the smallest page size (so the least limit).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The least room for strings, whatever the stack limit (the kernel's
/// `ARG_MAX`, 32 pages).
pub const MIN_TOTAL: usize = 32 * 4096;
/// The most room for strings, whatever the stack limit (three quarters of
/// the kernel's default 8 MiB stack, `_STK_LIM / 4 * 3`).
pub const MAX_TOTAL: usize = 6 << 20;
const POINTER: usize = std::mem::size_of::<usize>();

/// How much a new process's strings may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgLimit {
    /// Bytes for every string and its pointer together.
    pub total: usize,
}

/// The size of an environment: its strings (`KEY=VALUE` and a NUL each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnvSize {
    pub count: usize,
    pub bytes: usize,
}

/// Why a command line would not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooLong {
    /// `argv[index]` takes `bytes` (its NUL included), over
    /// [`MAX_ARG_STRLEN`].
    Arg { index: usize, bytes: usize },
    /// All strings and pointers take `bytes`, over `limit`.
    Total { bytes: usize, limit: usize },
}

impl ArgLimit {
    /// The limit under a stack size limit of `stack` bytes (`None`:
    /// unlimited).
    pub fn from_stack(stack: Option<u64>) -> Self {
        let quarter = stack.map_or(usize::MAX, |s| usize::try_from(s / 4).unwrap_or(usize::MAX));
        ArgLimit {
            total: quarter.clamp(MIN_TOTAL, MAX_TOTAL),
        }
    }

    /// The limit of this process, which the smolvm it starts inherits.
    pub fn of_system() -> Self {
        let stack = rustix::process::getrlimit(rustix::process::Resource::Stack);
        Self::from_stack(stack.current)
    }

    /// Whether `argv` (program first) starts with an environment of `env`.
    pub fn check(&self, argv: &[String], env: EnvSize) -> Result<(), TooLong> {
        if let Some((index, bytes)) = argv
            .iter()
            .map(|a| a.len() + 1)
            .enumerate()
            .find(|(_, n)| *n > MAX_ARG_STRLEN)
        {
            return Err(TooLong::Arg { index, bytes });
        }
        let bytes = measure(argv, env);
        match bytes > self.total {
            true => Err(TooLong::Total {
                bytes,
                limit: self.total,
            }),
            false => Ok(()),
        }
    }
}

/// What `argv` and `env` take as the kernel counts them: the strings with
/// their NULs, the program's path once more, and a pointer per string
/// (plus the two arrays' closing null pointers).
pub fn measure(argv: &[String], env: EnvSize) -> usize {
    let strings: usize = argv.iter().map(|a| a.len() + 1).sum();
    let program = argv.first().map_or(0, |p| p.len() + 1);
    let pointers = (argv.len() + env.count + 2) * POINTER;
    strings + program + env.bytes + pointers
}

/// What one argument takes as the kernel counts it: the string, its NUL
/// and its pointer.
pub fn cost(arg: &str) -> usize {
    arg.len() + 1 + POINTER
}

impl EnvSize {
    /// The size of the environment `vars`.
    pub fn of<'a>(vars: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>) -> Self {
        vars.into_iter()
            .fold(EnvSize::default(), |size, (k, v)| EnvSize {
                count: size.count + 1,
                bytes: size.bytes + k.as_bytes().len() + 1 + v.as_bytes().len() + 1,
            })
    }

    /// The size of this process's environment, which smolvm inherits.
    pub fn of_process() -> Self {
        let vars: Vec<_> = std::env::vars_os().collect();
        Self::of(vars.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_total_is_a_quarter_of_the_stack_between_the_kernel_s_bounds() {
        let mib = 1 << 20;
        assert_eq!(ArgLimit::from_stack(Some(8 * mib)).total, 2 << 20);
        assert_eq!(ArgLimit::from_stack(Some(64 * 1024)).total, MIN_TOTAL);
        assert_eq!(ArgLimit::from_stack(Some(64 * mib)).total, MAX_TOTAL);
        assert_eq!(ArgLimit::from_stack(None).total, MAX_TOTAL);
        let sys = ArgLimit::of_system().total;
        assert!((MIN_TOTAL..=MAX_TOTAL).contains(&sys), "{sys}");
    }

    #[test]
    fn strings_count_with_their_nul_pointer_and_the_program_twice() {
        let env = EnvSize::of([(OsStr::new("A"), OsStr::new("bc"))]);
        assert_eq!(env, EnvSize { count: 1, bytes: 5 });
        let p = POINTER;
        assert_eq!(measure(&argv(&["ab", "c"]), env), 3 + 2 + 3 + 5 + 5 * p);
        assert_eq!(cost("abc"), 4 + p);
    }

    #[test]
    fn one_argument_over_the_string_limit_is_named() {
        let limit = ArgLimit { total: MAX_TOTAL };
        let long = "x".repeat(MAX_ARG_STRLEN);
        let fits = "x".repeat(MAX_ARG_STRLEN - 1);
        let none = EnvSize::default();
        assert_eq!(limit.check(&argv(&["p", &fits]), none), Ok(()));
        assert_eq!(
            limit.check(&argv(&["p", "-e", &long]), none),
            Err(TooLong::Arg {
                index: 2,
                bytes: MAX_ARG_STRLEN + 1
            })
        );
    }

    #[test]
    fn the_environment_counts_towards_the_total() {
        let words = argv(&["p", &"x".repeat(1000)]);
        let bytes = measure(&words, EnvSize::default());
        let limit = ArgLimit { total: bytes };
        assert_eq!(limit.check(&words, EnvSize::default()), Ok(()));
        let env = EnvSize { count: 0, bytes: 1 };
        assert_eq!(
            limit.check(&words, env),
            Err(TooLong::Total {
                bytes: bytes + 1,
                limit: bytes
            })
        );
    }
}
