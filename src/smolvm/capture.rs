//! What bottle keeps in memory of one stream of a call's output.
//!
//! A call may print without bound (a guest command printing 200 MB), so no
//! stream is ever held whole: an observation call's answer, which must be
//! parsed whole, is kept up to [`WHOLE_CAP`] and is an overflow past it;
//! any other stream keeps only its last [`TAIL_BYTES`]. Pure: reading the
//! pipes and copying the output elsewhere (an exec step's log) is the
//! runner's job.

/// How much of a non-observation stream stays in memory: its last 64 KiB.
pub const TAIL_BYTES: usize = 64 * 1024;

/// The most an observation call (`--version`, `status`, `ls`) may print on
/// one stream: its answer is parsed whole. A `status` answer is about
/// 2 KiB, so this is `ls` of some thousands of machines.
pub const WHOLE_CAP: usize = 8 * 1024 * 1024;

/// What to keep of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// All of it, up to this many bytes; more is an overflow.
    Whole(usize),
    /// Only its last this many bytes.
    Tail(usize),
}

/// The kept part of one stream, fed chunk by chunk as it is read.
#[derive(Debug)]
pub struct Capture {
    keep: Keep,
    buf: Vec<u8>,
    /// Bytes read but no longer kept (always 0 for [`Keep::Whole`]).
    dropped: u64,
    overflow: bool,
}

impl Capture {
    pub fn new(keep: Keep) -> Self {
        Capture {
            keep,
            buf: Vec::new(),
            dropped: 0,
            overflow: false,
        }
    }

    /// Take in the next chunk read. Returns `false` once a
    /// [`Keep::Whole`] stream overflowed: reading it further is pointless.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        match self.keep {
            Keep::Whole(cap) if self.buf.len() + chunk.len() > cap => {
                self.overflow = true;
                false
            }
            Keep::Whole(_) => {
                self.buf.extend_from_slice(chunk);
                true
            }
            Keep::Tail(cap) => {
                self.buf.extend_from_slice(chunk);
                // Compacting only past twice the cap keeps pushes linear.
                if self.buf.len() > cap.saturating_mul(2) {
                    self.trim_to(cap);
                }
                true
            }
        }
    }

    /// How this stream is kept.
    pub fn keep(&self) -> Keep {
        self.keep
    }

    /// Whether a [`Keep::Whole`] stream printed more than its cap.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    fn trim_to(&mut self, cap: usize) {
        let cut = self.buf.len().saturating_sub(cap);
        self.buf.drain(..cut);
        self.dropped += cut as u64;
    }

    /// The kept text: the stream itself when nothing was dropped, else a
    /// `[bottle: N earlier bytes not kept]` line and then the tail, from
    /// its first whole character. Invalid UTF-8 shows as U+FFFD.
    pub fn text(&self) -> String {
        let mut kept = self.buf.as_slice();
        let mut dropped = self.dropped;
        if let Keep::Tail(cap) = self.keep
            && kept.len() > cap
        {
            dropped += (kept.len() - cap) as u64;
            kept = &kept[kept.len() - cap..];
        }
        if dropped == 0 {
            return String::from_utf8_lossy(kept).into_owned();
        }
        let partial = kept.iter().take(3).take_while(|b| *b & 0xC0 == 0x80);
        let skip = partial.count();
        format!(
            "[bottle: {} earlier bytes not kept]\n{}",
            dropped + skip as u64,
            String::from_utf8_lossy(&kept[skip..])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(keep: Keep, chunks: &[&[u8]]) -> Capture {
        let mut c = Capture::new(keep);
        for chunk in chunks {
            c.push(chunk);
        }
        c
    }

    #[test]
    fn a_short_stream_is_kept_as_it_is() {
        let c = fed(Keep::Tail(8), &[b"ab", b"cd\n"]);
        assert_eq!(c.text(), "abcd\n");
        let w = fed(Keep::Whole(8), &[b"ab", b"cd\n"]);
        assert_eq!((w.text().as_str(), w.overflowed()), ("abcd\n", false));
    }

    #[test]
    fn a_long_stream_keeps_its_tail_and_says_how_much_went() {
        let chunks: Vec<&[u8]> = vec![b"0123456789"; 100];
        let c = fed(Keep::Tail(15), &chunks);
        assert_eq!(
            c.text(),
            "[bottle: 985 earlier bytes not kept]\n567890123456789"
        );
        assert!(c.buf.len() <= 30 + 10, "held {} bytes", c.buf.len());
    }

    #[test]
    fn memory_stays_within_twice_the_cap_plus_a_chunk() {
        let mut c = Capture::new(Keep::Tail(TAIL_BYTES));
        let chunk = vec![b'x'; 64 * 1024];
        let mut most = 0;
        for _ in 0..200 {
            c.push(&chunk);
            most = most.max(c.buf.capacity());
        }
        assert!(most <= 4 * TAIL_BYTES, "capacity reached {most}");
        assert_eq!(
            c.text().len(),
            TAIL_BYTES + "[bottle: 13041664 earlier bytes not kept]\n".len()
        );
    }

    #[test]
    fn a_cut_never_starts_inside_a_character() {
        let c = fed(Keep::Tail(4), &["aéé".as_bytes()]);
        assert_eq!(c.text(), "[bottle: 1 earlier bytes not kept]\néé");
        let c = fed(Keep::Tail(3), &["aéé".as_bytes()]);
        assert_eq!(c.text(), "[bottle: 3 earlier bytes not kept]\né");
    }

    #[test]
    fn a_whole_stream_past_its_cap_overflows_and_stops_growing() {
        let mut c = Capture::new(Keep::Whole(5));
        assert!(c.push(b"abc"));
        assert!(!c.push(b"def"));
        assert!(c.overflowed());
        assert_eq!(c.text(), "abc");
    }
}
