//! Service level objectives: compiled from the configuration's layers (operation > service >
//! `observe.default_slo`), and validated once per VM so a request never meets a bad objective.

use crate::config_error::ConfigError;
use crate::observe::input::SloInput;
use crate::status::Code;

/// gRPC codes counted against availability when the configuration names none: the ones that
/// say "the service failed", never "the client asked wrongly". RESOURCE_EXHAUSTED is left out
/// (quota and rate limits are usually the client's doing); configure it where it is not.
pub const DEFAULT_ERROR_CODES: [Code; 5] = [
    Code::Unavailable,
    Code::DeadlineExceeded,
    Code::Internal,
    Code::Unknown,
    Code::DataLoss,
];

/// A latency objective: `target` percent of requests faster than `threshold_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySlo {
    pub threshold_ms: u64,
    /// Percent, strictly between 0 and 100.
    pub target: f64,
}

/// The objectives of one operation, merged and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Availability objective, percent, strictly between 0 and 100.
    pub availability: Option<f64>,
    pub latency: Option<LatencySlo>,
    /// gRPC codes that count as failures (deduplicated, never OK).
    pub error_codes: Vec<Code>,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            availability: None,
            latency: None,
            error_codes: DEFAULT_ERROR_CODES.to_vec(),
        }
    }
}

impl Slo {
    /// Merge layers, most specific first (operation, service, `observe.default_slo`): per
    /// field, the first layer that sets it wins. Errors name the field relative to the SLO
    /// (`latency.target`); use [`Slo::compile_at`] to get the layer's path in front.
    pub fn compile(layers: &[Option<&SloInput>]) -> Result<Slo, ConfigError> {
        let named: Vec<(&str, Option<&SloInput>)> = layers.iter().map(|l| ("", *l)).collect();
        Slo::compile_at(&named)
    }

    /// As [`Slo::compile`], with each layer's configuration path (`operations.x.slo`), so an
    /// error names the layer that supplied the bad value.
    pub fn compile_at(layers: &[(&str, Option<&SloInput>)]) -> Result<Slo, ConfigError> {
        let present = || layers.iter().filter_map(|(p, l)| l.map(|l| (*p, l)));
        let mut slo = Slo::default();
        if let Some((path, input)) = present().find(|(_, l)| l.availability.is_some()) {
            slo.availability = input
                .availability
                .map(|a| check_percent(a, "availability"))
                .transpose()
                .map_err(|e| e.within(path))?;
        }
        if let Some((path, input)) = present().find(|(_, l)| l.latency.is_some()) {
            if let Some(lat) = &input.latency {
                slo.latency = Some(
                    compile_latency(lat.threshold_ms, lat.target)
                        .map_err(|e| e.within("latency").within(path))?,
                );
            }
        }
        if let Some((path, input)) = present().find(|(_, l)| l.error_codes.is_some()) {
            if let Some(names) = &input.error_codes {
                slo.error_codes = compile_codes(names).map_err(|e| e.within(path))?;
            }
        }
        Ok(slo)
    }

    /// Check one layer on its own (the configuration compiler validates every SLO it meets,
    /// even one that a more specific layer shadows everywhere).
    pub fn validate(input: &SloInput) -> Result<(), ConfigError> {
        Slo::compile(&[Some(input)]).map(|_| ())
    }

    /// No objective at all: nothing to classify, count or alert on.
    /// The objective of requests that match no operation (unknown paths, requests Envoy
    /// refused before meshgate saw their headers): `observe.default_slo`'s availability only
    /// (their latency says nothing about a service). So 5xx made before any operation is known
    /// reach the burn-rate alerts (`operation="_unmatched"`), and 4xx (a 404 storm) are good.
    pub fn unmatched(default_slo: Option<&SloInput>) -> Result<Slo, ConfigError> {
        let mut slo = Slo::compile_at(&[("observe.default_slo", default_slo)])?;
        slo.latency = None;
        Ok(slo)
    }

    pub fn is_empty(&self) -> bool {
        self.availability.is_none() && self.latency.is_none()
    }

    /// Whether a gRPC code counts against availability.
    pub fn is_error_code(&self, code: Code) -> bool {
        self.error_codes.contains(&code)
    }
}

fn check_percent(value: f64, field: &str) -> Result<f64, ConfigError> {
    // Written so that NaN fails too.
    if value > 0.0 && value < 100.0 {
        Ok(value)
    } else {
        Err(ConfigError::new(
            field,
            format!("must be a percentage strictly between 0 and 100 (got {value})"),
        ))
    }
}

fn compile_latency(threshold_ms: u64, target: f64) -> Result<LatencySlo, ConfigError> {
    if threshold_ms == 0 {
        return Err(ConfigError::new("threshold_ms", "must be greater than 0"));
    }
    Ok(LatencySlo {
        threshold_ms,
        target: check_percent(target, "target")?,
    })
}

fn compile_codes(names: &[String]) -> Result<Vec<Code>, ConfigError> {
    let mut codes = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let field = format!("error_codes[{i}]");
        let code = Code::from_name(name.trim()).ok_or_else(|| {
            ConfigError::new(
                field.clone(),
                format!("unknown gRPC code {name:?} (use names like UNAVAILABLE)"),
            )
        })?;
        if code == Code::Ok {
            return Err(ConfigError::new(field, "OK cannot count as an error"));
        }
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::input::LatencySloInput;

    fn input(avail: Option<f64>, lat: Option<(u64, f64)>, codes: Option<&[&str]>) -> SloInput {
        SloInput {
            availability: avail,
            latency: lat.map(|(threshold_ms, target)| LatencySloInput {
                threshold_ms,
                target,
            }),
            error_codes: codes.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn first_layer_wins_per_field() {
        let op = input(Some(99.5), None, None);
        let svc = input(Some(99.0), Some((300, 95.0)), Some(&["UNAVAILABLE"]));
        let slo = Slo::compile(&[Some(&op), None, Some(&svc)]).unwrap();
        assert_eq!(slo.availability, Some(99.5));
        assert_eq!(
            slo.latency,
            Some(LatencySlo {
                threshold_ms: 300,
                target: 95.0
            })
        );
        assert_eq!(slo.error_codes, vec![Code::Unavailable]);
    }

    #[test]
    fn no_layers_give_default_error_codes_and_no_objective() {
        let slo = Slo::compile(&[None, None]).unwrap();
        assert!(slo.is_empty());
        assert_eq!(slo.error_codes, DEFAULT_ERROR_CODES.to_vec());
        assert!(!slo.is_error_code(Code::ResourceExhausted));
    }

    #[test]
    fn resource_exhausted_counts_only_when_configured() {
        let l = input(Some(99.9), None, Some(&["resource_exhausted", "INTERNAL"]));
        let slo = Slo::compile(&[Some(&l)]).unwrap();
        assert!(slo.is_error_code(Code::ResourceExhausted));
        assert!(!slo.is_error_code(Code::Unavailable));
    }

    #[test]
    fn out_of_range_availability_is_refused_with_its_field() {
        for bad in [0.0, 100.0, 120.0, -1.0, f64::NAN] {
            let l = input(Some(bad), None, None);
            let e = Slo::compile_at(&[("operations.x.slo", Some(&l))]).unwrap_err();
            assert_eq!(e.field, "operations.x.slo.availability", "{bad}");
        }
    }

    #[test]
    fn zero_latency_threshold_is_refused() {
        let l = input(None, Some((0, 95.0)), None);
        let e = Slo::compile(&[Some(&l)]).unwrap_err();
        assert_eq!(e.field, "latency.threshold_ms");
    }

    #[test]
    fn latency_target_of_100_is_refused() {
        let l = input(None, Some((300, 100.0)), None);
        let e = Slo::compile_at(&[("services.s.slo", Some(&l))]).unwrap_err();
        assert_eq!(e.field, "services.s.slo.latency.target");
    }

    #[test]
    fn unknown_code_name_is_refused_with_its_index() {
        let l = input(None, None, Some(&["UNAVAILABLE", "BROKEN"]));
        let e = Slo::compile_at(&[("observe.default_slo", Some(&l))]).unwrap_err();
        assert_eq!(e.field, "observe.default_slo.error_codes[1]");
        assert!(e.message.contains("BROKEN"));
    }

    #[test]
    fn ok_is_not_an_error_code() {
        let l = input(None, None, Some(&["OK"]));
        assert!(Slo::validate(&l).is_err());
    }

    #[test]
    fn error_comes_from_the_layer_that_supplied_the_value() {
        let op = input(None, None, None);
        let svc = input(Some(150.0), None, None);
        let e = Slo::compile_at(&[
            ("operations.o.slo", Some(&op)),
            ("services.s.slo", Some(&svc)),
        ])
        .unwrap_err();
        assert_eq!(e.field, "services.s.slo.availability");
    }

    #[test]
    fn duplicate_codes_are_kept_once() {
        let l = input(None, None, Some(&["INTERNAL", "internal"]));
        let slo = Slo::compile(&[Some(&l)]).unwrap();
        assert_eq!(slo.error_codes, vec![Code::Internal]);
    }
}
