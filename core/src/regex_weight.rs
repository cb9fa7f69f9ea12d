//! The weight of a `regex` pattern: an upper bound on the states its compiled
//! program runs per input character, counted from the pattern text alone
//! (docs/spec.md, section 17, limit `regex_weight`).
//!
//! `regex-lite` matches with a PikeVM, whose time is the number of states
//! active at once times the input length. Its own size limit counts heap bytes
//! of the compiled program, which depend on the pointer width: the same pattern
//! measures half as much in 32-bit WebAssembly as on a 64-bit host, so a limit
//! in those bytes would accept a config on the web and reject it on a server.
//! The weight here depends only on the pattern's text, so the limit is the
//! same everywhere. It over-counts rather than under-counts: a part of the
//! pattern it cannot read as regex syntax counts as literal characters, and a
//! pattern that does not compile is refused by `regex-lite` afterwards anyway.
//!
//! Rules (each saturating at `u64::MAX`):
//! - a literal character, an escape (`\x41`, `\x{..}`, `\u{..}`, `\pN`,
//!   `\p{..}`, `\b{start}`, ...), `.`, `^`, `$`: 1;
//! - a character class `[...]`: 1 plus a sixteenth of the characters between
//!   its brackets (its ranges are scanned one by one, at about a tenth of the
//!   cost of a state);
//! - a group: the sum of its branches, plus 1 per `|`, plus 1;
//! - `x*`, `x+`, `x?` (lazy or not): the weight of `x` plus 1;
//! - `x{n}`: n copies of `x`; `x{n,m}`: m copies; `x{n,}`: n + 1 copies (at
//!   least one copy is counted, so `x{0}` weighs as `x`);
//! - whitespace and `#` comments in verbose mode (`(?x)`) weigh nothing and are
//!   not atoms, as in `regex-lite`.

/// The weight of `pattern` (see the module documentation).
pub fn regex_weight(pattern: &str) -> u64 {
    let chars: Vec<char> = pattern.chars().collect();
    let mut frames = vec![Frame::default()];
    let mut i = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let nested = frames.len() > 1;
        let top = frames.last_mut().expect("the outermost frame is never popped");
        if top.verbose && c.is_whitespace() {
            i += 1;
            continue;
        }
        if top.verbose && c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        match c {
            '\\' => {
                i = skip_escape(&chars, i);
                top.atom(1);
                continue;
            }
            '[' => {
                let (end, inner) = skip_class(&chars, i);
                i = end;
                top.atom(1 + inner as u64 / 16);
                continue;
            }
            '(' => {
                let (end, flags, scoped) = group_prefix(&chars, i);
                i = end;
                let verbose = apply_flags(top.verbose, flags);
                if scoped {
                    frames.push(Frame { verbose, ..Frame::default() });
                } else {
                    // `(?flags)`: changes the flags of the rest of the enclosing
                    // group, and a quantifier right after it repeats nothing.
                    top.verbose = verbose;
                    top.last = 0;
                }
                continue;
            }
            ')' if nested => {
                let inner = frames.pop().expect("checked above").total();
                let top = frames.last_mut().expect("the outermost frame is never popped");
                top.atom(inner.saturating_add(1));
                i += 1;
                continue;
            }
            '|' => {
                top.alts = top.alts.saturating_add(top.cur).saturating_add(1);
                top.cur = 0;
                top.last = 0;
            }
            '*' | '+' | '?' => top.repeat(1, true),
            '{' => match counted(&chars, i) {
                Some((end, copies)) => {
                    i = end;
                    top.repeat(copies, false);
                    continue;
                }
                None => top.atom(1),
            },
            _ => top.atom(1),
        }
        i += 1;
    }
    // Unclosed groups (a syntax error `regex-lite` reports) still count.
    let mut total = 0u64;
    while let Some(f) = frames.pop() {
        total = total.saturating_add(f.total()).saturating_add(1);
    }
    total
}

/// One group being read: the weight of its finished branches, of the current
/// branch, and of the last atom (what a quantifier repeats).
#[derive(Default)]
struct Frame {
    alts: u64,
    cur: u64,
    last: u64,
    verbose: bool,
}

impl Frame {
    fn atom(&mut self, w: u64) {
        self.cur = self.cur.saturating_add(w);
        self.last = w;
    }

    /// Repeat the last atom: `copies` copies in all, plus one state when `plus_one`.
    fn repeat(&mut self, copies: u64, plus_one: bool) {
        let extra = self.last.saturating_mul(copies.max(1) - 1).saturating_add(u64::from(plus_one));
        self.cur = self.cur.saturating_add(extra);
        self.last = self.last.saturating_add(extra);
    }

    fn total(&self) -> u64 {
        self.alts.saturating_add(self.cur)
    }
}

/// The index after the escape starting at `i` (`chars[i] == '\\'`).
fn skip_escape(chars: &[char], i: usize) -> usize {
    let mut j = i + 1;
    let Some(&c) = chars.get(j) else { return j };
    j += 1;
    if c == 'b' && chars.get(j) == Some(&'{') {
        // `\b{start}`, `\b{end-half}`: a name of ASCII letters and `-`, closed.
        let k = j + 1 + chars[j + 1..].iter().take_while(|c| c.is_ascii_alphabetic() || **c == '-').count();
        if k > j + 1 && chars.get(k) == Some(&'}') {
            return k + 1;
        }
        return j;
    }
    if matches!(c, 'x' | 'u' | 'U' | 'p' | 'P') && chars.get(j) == Some(&'{') {
        while j < chars.len() && chars[j] != '}' {
            j += 1;
        }
        return (j + 1).min(chars.len());
    }
    if matches!(c, 'p' | 'P') {
        // `\pN`: a one-letter class name.
        return (j + 1).min(chars.len());
    }
    let hex = match c {
        'x' => 2,
        'u' => 4,
        'U' => 8,
        _ => 0,
    };
    let mut n = 0;
    while n < hex && chars.get(j).is_some_and(|d| d.is_ascii_hexdigit()) {
        j += 1;
        n += 1;
    }
    j
}

/// The index after the class starting at `i` and how many characters it holds.
fn skip_class(chars: &[char], i: usize) -> (usize, usize) {
    // After each `[` (outer or nested): an optional `^`, then a `]` that is a literal.
    let open = |mut j: usize| {
        if chars.get(j) == Some(&'^') {
            j += 1;
        }
        if chars.get(j) == Some(&']') {
            j += 1;
        }
        j
    };
    let mut j = open(i + 1);
    let mut depth = 1usize;
    while j < chars.len() {
        match chars[j] {
            '\\' => {
                j = skip_escape(chars, j);
                continue;
            }
            '[' => {
                depth += 1;
                j = open(j + 1);
                continue;
            }
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return (j + 1, j - i - 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    (j, j - i - 1)
}

/// Reads a group opening at `i`: the index after it, its flags (`"x"`, `"-x"`,
/// ...), and whether it opens a scope (`(`, `(?:`, `(?flags:`, `(?P<name>`) or
/// only sets flags (`(?flags)`).
fn group_prefix(chars: &[char], i: usize) -> (usize, String, bool) {
    if chars.get(i + 1) != Some(&'?') {
        return (i + 1, String::new(), true);
    }
    let mut j = i + 2;
    let named = match chars.get(j) {
        Some('P') => chars.get(j + 1) == Some(&'<'),
        // `(?<=` and `(?<!` are look-behind, not names.
        Some('<') => !matches!(chars.get(j + 1), Some('=' | '!')),
        _ => false,
    };
    if named {
        while j < chars.len() && chars[j] != '>' {
            j += 1;
        }
        return ((j + 1).min(chars.len()), String::new(), true);
    }
    let mut flags = String::new();
    while let Some(&c) = chars.get(j) {
        j += 1;
        match c {
            ':' => return (j, flags, true),
            ')' => return (j, flags, false),
            'i' | 'm' | 's' | 'R' | 'U' | 'x' | '-' => flags.push(c),
            // Not a flag (look-around and the like, which regex-lite refuses):
            // a plain group whose content starts after `(?`.
            _ => return (i + 2, String::new(), true),
        }
    }
    (j, flags, true)
}

/// Verbose mode after applying `flags` (`x` sets it, `-x` clears it).
fn apply_flags(verbose: bool, flags: String) -> bool {
    let mut on = true;
    let mut v = verbose;
    for c in flags.chars() {
        match c {
            '-' => on = false,
            'x' => v = on,
            _ => {}
        }
    }
    v
}

/// Reads a counted repetition `{n}`, `{n,}` or `{n,m}` at `i` (whitespace
/// allowed around the numbers, not inside them): the index after it and the
/// copies it makes (at least 1).
fn counted(chars: &[char], i: usize) -> Option<(usize, u64)> {
    let space = |mut k: usize| {
        while chars.get(k).is_some_and(|c| c.is_whitespace()) {
            k += 1;
        }
        k
    };
    let number = |k: usize| -> Option<(u64, usize)> {
        let digits = chars[k.min(chars.len())..].iter().take_while(|c| c.is_ascii_digit()).count();
        let n = chars[k..k + digits]
            .iter()
            .fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(*d as u8 - b'0')));
        (digits > 0).then_some((n, k + digits))
    };
    let (lo, k) = number(space(i + 1))?;
    let k = space(k);
    let (copies, k) = match chars.get(k) {
        Some('}') => (lo, k),
        Some(',') => match number(space(k + 1)) {
            Some((hi, k)) => (lo.max(hi), space(k)),
            None => (lo.saturating_add(1), space(k + 1)),
        },
        _ => return None,
    };
    (chars.get(k) == Some(&'}')).then_some((k + 1, copies.max(1)))
}

#[cfg(test)]
mod tests {
    use super::regex_weight as w;

    #[test]
    fn hand_counted_weights() {
        assert_eq!(w(""), 1);
        assert_eq!(w("abc"), 4);
        assert_eq!(w("a{100}c$"), 103);
        // (a{100}) = 101, {300} copies it: 30,300, plus the `$` and the frame.
        assert_eq!(w("(a{100}){300}$"), 30_302);
        assert_eq!(w("a{2,5}"), 6);
        assert_eq!(w("a{2,}"), 4);
        assert_eq!(w("a{ 2 , 5 }"), 6);
        assert_eq!(w("a*b+c?"), 7);
        assert_eq!(w("a|b"), 4);
        // A class: 1 + 7 characters / 16; 1 + 32 / 16.
        assert_eq!(w("[a-z0-9_]"), 2);
        assert_eq!(w("[abcdefghijklmnopqrstuvwxyz012345]"), 4);
        assert_eq!(w(r"\x{41}{3}"), 4);
        assert_eq!(w(r"[\]x]"), 2);
        assert_eq!(w("[a-z]{60}c"), 62);
        assert_eq!(w(r"\w{60}c"), 62);
        assert_eq!(w(r"\d+"), 3);
        assert_eq!(w(r"\pN\p{Greek}\b{start}"), 4);
        assert_eq!(w(r"\.{3}"), 4);
        assert_eq!(w(r"\b{3}"), 4);
        assert_eq!(w("a{1 2}"), 7);
        // A quantifier with nothing before it repeats nothing; a flag group ends the atom.
        assert_eq!(w("a(?i){5}"), 2);
        assert_eq!(w("(?=ab)"), 5);
        // Verbose mode: whitespace and comments weigh nothing and a quantifier
        // after them still repeats the group.
        assert_eq!(w("(?x)(ab) # c\n{10}"), 31);
        assert_eq!(w("(?x:a b)"), 4);
        // Not verbose: `#` and spaces are literals.
        assert_eq!(w("a #"), 4);
        // Nested repetition multiplies.
        assert_eq!(w("((a{10}){10}){10}"), 1 + 1_000 + 100 + 10);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(w("(((a{99999999}){99999999}){99999999}){99999999}"), u64::MAX);
    }
}
