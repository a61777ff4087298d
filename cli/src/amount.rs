//! Money on the command line: credits with up to 6 decimals, stored as µcr.

use anyhow::{Context, bail};

pub const MICRO_PER_CREDIT: u64 = 1_000_000;

/// Parses "12", "12.5" or "0.000001" credits into µcr.
pub fn parse_credits(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        bail!("'{s}' is not an amount");
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        bail!("'{s}' is not an amount: use digits and at most one '.', e.g. 12.5");
    }
    if frac.len() > 6 {
        bail!("'{s}' has more than 6 decimals (1 µcr = 0.000001 credit)");
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .with_context(|| format!("'{s}' is too large"))?
    };
    let frac_micro: u64 = format!("{frac:0<6}").parse().unwrap_or(0);
    whole
        .checked_mul(MICRO_PER_CREDIT)
        .and_then(|w| w.checked_add(frac_micro))
        .with_context(|| format!("'{s}' credits do not fit in 64 bits of µcr"))
}

/// Formats µcr as credits with 6 decimals.
pub fn format_credits(micro: u64) -> String {
    format!(
        "{}.{:06}",
        micro / MICRO_PER_CREDIT,
        micro % MICRO_PER_CREDIT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        assert_eq!(parse_credits("12").unwrap(), 12_000_000);
        assert_eq!(parse_credits("12.5").unwrap(), 12_500_000);
        assert_eq!(parse_credits("0.000001").unwrap(), 1);
        assert_eq!(parse_credits(".25").unwrap(), 250_000);
        assert!(parse_credits("1.0000001").is_err());
        assert!(parse_credits("-1").is_err());
        assert!(parse_credits("1e5").is_err());
        assert!(parse_credits("").is_err());
        assert!(parse_credits("99999999999999999999").is_err());
        assert!(parse_credits("18446744073709.551616").is_err());
        assert_eq!(format_credits(12_500_000), "12.500000");
        assert_eq!(format_credits(1), "0.000001");
    }
}
