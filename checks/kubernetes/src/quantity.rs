//! Kubernetes resource quantities (`100m`, `1Gi`, `500M`, `1e3`) as plain numbers.
//!
//! The grammar is Kubernetes' `resource.Quantity`: a signed decimal number followed by a binary
//! SI suffix (`Ki`..`Ei`), a decimal SI suffix (`n`, `u`, `m`, `k`, `M`..`E`) or a decimal
//! exponent (`e3`, `E-2`). Datadog's parser silently treats an unknown suffix as 1; this one
//! rejects it, so that a typo never turns into a wrong number.

/// The value of a quantity: cores for `cpu`, bytes for `memory` and `ephemeral-storage`.
pub fn parse(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let number_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a quantity (no number)"));
    }
    let scale = scale(suffix).ok_or_else(|| format!("{text:?} has an unknown suffix {suffix:?}"))?;
    // Decimal scales go through the parser (`100e-3`), so that `100m` is exactly 0.1.
    let value = match scale {
        Scale::Decimal(exponent) => format!("{number}e{exponent}").parse::<f64>(),
        Scale::Binary(power) => number.parse::<f64>().map(|n| n * 2f64.powi(power)),
    };
    value.map_err(|_| format!("{text:?} is not a quantity (bad number {number:?})"))
}

enum Scale {
    /// Times 10^n.
    Decimal(i32),
    /// Times 2^n.
    Binary(i32),
}

fn scale(suffix: &str) -> Option<Scale> {
    let scale = match suffix {
        "" => Scale::Decimal(0),
        "n" => Scale::Decimal(-9),
        "u" => Scale::Decimal(-6),
        "m" => Scale::Decimal(-3),
        "k" => Scale::Decimal(3),
        "M" => Scale::Decimal(6),
        "G" => Scale::Decimal(9),
        "T" => Scale::Decimal(12),
        "P" => Scale::Decimal(15),
        "E" => Scale::Decimal(18),
        "Ki" => Scale::Binary(10),
        "Mi" => Scale::Binary(20),
        "Gi" => Scale::Binary(30),
        "Ti" => Scale::Binary(40),
        "Pi" => Scale::Binary(50),
        "Ei" => Scale::Binary(60),
        // `e3`, `E-2`: a decimal exponent (a bare `E` is exa, matched above).
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Scale::Decimal(exponent.parse().ok()?)
        }
    };
    Some(scale)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn suffixes() {
        assert_eq!(parse("100m").unwrap(), 0.1);
        assert_eq!(parse("250m").unwrap(), 0.25);
        assert_eq!(parse("2").unwrap(), 2.0);
        assert_eq!(parse("1.5").unwrap(), 1.5);
        assert_eq!(parse("1Gi").unwrap(), 1073741824.0);
        assert_eq!(parse("200Mi").unwrap(), 209715200.0);
        assert_eq!(parse("12Ki").unwrap(), 12288.0);
        assert_eq!(parse("500M").unwrap(), 500_000_000.0);
        assert_eq!(parse("12k").unwrap(), 12_000.0);
        assert_eq!(parse("1E").unwrap(), 1e18);
        assert_eq!(parse("1Ei").unwrap(), 1152921504606846976.0);
        assert_eq!(parse("500u").unwrap(), 0.0005);
        assert_eq!(parse("7n").unwrap(), 7e-9);
    }

    #[test]
    fn exponents_and_signs() {
        assert_eq!(parse("1e3").unwrap(), 1000.0);
        assert_eq!(parse("1E3").unwrap(), 1000.0);
        assert_eq!(parse("5e-1").unwrap(), 0.5);
        assert_eq!(parse("2e+2").unwrap(), 200.0);
        assert_eq!(parse("-1").unwrap(), -1.0);
        assert_eq!(parse("+.5").unwrap(), 0.5);
        assert_eq!(parse(" 64Mi ").unwrap(), 67108864.0);
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        assert!(parse("12K").unwrap_err().contains("unknown suffix \"K\""));
        assert!(parse("12test").unwrap_err().contains("unknown suffix"));
        assert!(parse("1e").unwrap_err().contains("unknown suffix"));
        assert!(parse("Mi").unwrap_err().contains("no number"));
        assert!(parse("").unwrap_err().contains("no number"));
        assert!(parse("1.2.3").unwrap_err().contains("bad number"));
    }
}
