//! The JWS algorithms meshgate verifies, and sets of them.
//!
//! The algorithm a token may use is decided by the key (its `kty`, `crv` and `alg`), never by the
//! token: a token's `alg` header only has to be one of the algorithms its key allows.

/// A JWS signature algorithm (RFC 7518 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

const ALL: [Alg; 12] = [
    Alg::Rs256,
    Alg::Rs384,
    Alg::Rs512,
    Alg::Ps256,
    Alg::Ps384,
    Alg::Ps512,
    Alg::Es256,
    Alg::Es384,
    Alg::EdDsa,
    Alg::Hs256,
    Alg::Hs384,
    Alg::Hs512,
];

impl Alg {
    /// Exact, case-sensitive match (RFC 7515: `alg` values are case-sensitive), so `none`,
    /// `None` and `hs256` are all unsupported.
    pub fn from_name(name: &str) -> Option<Alg> {
        ALL.iter().copied().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of algorithms (a bit set: membership is one AND on the request path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgSet(u16);

impl AlgSet {
    pub const RSA: AlgSet = AlgSet::of(&[
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
    ]);

    pub const fn of(algs: &[Alg]) -> AlgSet {
        let mut bits = 0u16;
        let mut rest = algs;
        while let [first, tail @ ..] = rest {
            bits |= 1 << (*first as u16);
            rest = tail;
        }
        AlgSet(bits)
    }

    pub fn contains(self, alg: Alg) -> bool {
        self.0 & alg.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersect(self, other: AlgSet) -> AlgSet {
        AlgSet(self.0 & other.0)
    }

    pub fn names(self) -> Vec<&'static str> {
        ALL.iter()
            .filter(|a| self.contains(**a))
            .map(|a| a.name())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_sensitive_and_none_is_not_an_algorithm() {
        assert_eq!(Alg::from_name("RS256"), Some(Alg::Rs256));
        assert_eq!(Alg::from_name("EdDSA"), Some(Alg::EdDsa));
        assert_eq!(Alg::from_name("rs256"), None);
        assert_eq!(Alg::from_name("none"), None);
        assert_eq!(Alg::from_name("None"), None);
        for a in ALL {
            assert_eq!(Alg::from_name(a.name()), Some(a));
        }
    }

    #[test]
    fn rsa_set_holds_rs_and_ps_only() {
        assert!(AlgSet::RSA.contains(Alg::Ps512));
        assert!(!AlgSet::RSA.contains(Alg::Hs256));
        assert!(!AlgSet::RSA.contains(Alg::Es256));
        assert_eq!(AlgSet::RSA.names().len(), 6);
        assert!(AlgSet::of(&[Alg::Hs256]).intersect(AlgSet::RSA).is_empty());
    }
}
