//! Nova's extra-spec matching (`extra_specs_ops.match`), shared by
//! ComputeCapabilitiesFilter and AggregateInstanceExtraSpecsFilter.
//!
//! A requirement is `<op> <operand>`: `=` (at least, numerically), `==`,
//! `!=`, `>=`, `<=` (numeric), `s==`, `s!=`, `s<`, `s<=`, `s>`, `s>=`
//! (string), `<in>` (substring), `<all-in>` (every word a substring), or
//! `<or> a <or> b` (one of). Anything else is compared verbatim. A numeric
//! operator on something that is not a number does not match.

/// Whether the host's `value` satisfies the requirement `req`.
pub fn matches(value: &str, req: &str) -> bool {
    let mut words = req.split_whitespace();
    let Some(op) = words.next() else {
        return value == req;
    };
    let num = |f: fn(f64, f64) -> bool| -> Option<bool> {
        let operand = req.split_whitespace().nth(1)?;
        Some(f(value.trim().parse().ok()?, operand.parse().ok()?))
    };
    let string = |f: fn(&str, &str) -> bool| -> Option<bool> {
        Some(f(value, req.split_whitespace().nth(1)?))
    };
    let result = match op {
        "=" | ">=" => num(|x, y| x >= y),
        "==" => num(|x, y| x == y),
        "!=" => num(|x, y| x != y),
        "<=" => num(|x, y| x <= y),
        "s==" => string(|x, y| x == y),
        "s!=" => string(|x, y| x != y),
        "s<" => string(|x, y| x < y),
        "s<=" => string(|x, y| x <= y),
        "s>" => string(|x, y| x > y),
        "s>=" => string(|x, y| x >= y),
        "<in>" => string(|x, y| x.contains(y)),
        "<all-in>" => {
            let rest: Vec<&str> = words.collect();
            Some(!rest.is_empty() && rest.iter().all(|w| value.contains(w)))
        }
        "<or>" => Some(words.step_by(2).any(|w| w == value)),
        _ => return value == req,
    };
    result.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn nova_operators() {
        assert!(matches("4096", "= 2048"), "= means at least");
        assert!(!matches("1024", "= 2048"));
        assert!(matches("2048", "== 2048.0"));
        assert!(matches("3", "!= 2"));
        assert!(matches("8", ">= 8") && !matches("7", ">= 8"));
        assert!(matches("7", "<= 8") && !matches("9", "<= 8"));
        assert!(matches("kvm", "s== kvm") && !matches("KVM", "s== kvm"));
        assert!(matches("qemu", "s!= kvm"));
        assert!(matches("abc", "s< abd") && matches("b", "s> a"));
        assert!(matches("sse sse2 avx", "<in> avx"));
        assert!(!matches("sse sse2", "<in> avx"));
        assert!(matches("sse sse2 avx", "<all-in> sse avx"));
        assert!(!matches("sse sse2", "<all-in> sse avx"));
        assert!(matches("b", "<or> a <or> b <or> c"));
        assert!(!matches("d", "<or> a <or> b <or> c"));
        assert!(matches("fast", "fast"), "no operator: verbatim");
        assert!(!matches("fast ssd", "fast"));
        assert!(!matches("lots", ">= 2"), "not a number");
        assert!(!matches("5", ">="), "no operand");
    }
}
