//! Check characters. Private to the generator: the normalisation library owns the real
//! implementations; these only make the synthetic numbers right (or wrong on purpose).

/// GB 11643-1999 check character of the first 17 digits of an identity number.
pub(super) fn gb11643(first17: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    CHECK.get((sum % 11) as usize).map(|&b| char::from(b))
}

/// The characters of GB 32100-2015 codes, in value order 0-30.
pub(super) const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// GB 32100-2015 check character of the first 17 characters of a credit code.
pub(super) fn gb32100(first17: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += USCC_ALPHABET.find(c)? as u32 * w;
    }
    let check = (31 - sum % 31) % 31;
    USCC_ALPHABET.chars().nth(check as usize)
}

/// GB 11714 check character of the first 8 characters of an organisation code
/// (digits, and letters valued A=10 ... Z=35).
pub(super) fn gb11714(first8: &str) -> Option<char> {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    if first8.chars().count() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first8.chars().zip(WEIGHTS) {
        sum += c.to_digit(36)? * w;
    }
    match 11 - sum % 11 {
        10 => Some('X'),
        11 => Some('0'),
        n => char::from_digit(n, 10),
    }
}

/// ISO 7064 MOD 11,10 check digit, used by the 15-digit registration numbers (注册号).
pub(super) fn mod11_10(body: &str) -> Option<char> {
    let mut p = 10;
    for c in body.chars() {
        let s = (p + c.to_digit(10)?) % 10;
        let s = if s == 0 { 10 } else { s };
        p = (s * 2) % 11;
    }
    char::from_digit((11 - p) % 10, 10)
}
