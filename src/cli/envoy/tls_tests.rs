#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use clap::Parser;

use super::tls::*;
use super::*;

#[derive(Debug, Parser)]
struct Cmd {
    #[command(flatten)]
    tls: TlsArgs,
}

fn parse(args: &[&str]) -> Result<Option<Tls>, String> {
    let argv = std::iter::once("meshgate-envoy").chain(args.iter().copied());
    Cmd::try_parse_from(argv)
        .map_err(|e| e.to_string())
        .and_then(|c| c.tls.tls())
}

fn rendered(args: &[&str]) -> serde_json::Value {
    let mut o = EnvoyOptions::new("{}".into(), "/m.wasm".into());
    o.tls = parse(args).unwrap();
    serde_json::to_value(bootstrap(&o)).unwrap()
}

const FILES: [&str; 6] = [
    "--tls-listen",
    "127.0.0.1:8443",
    "--tls-cert",
    "/c.pem",
    "--tls-key",
    "/k.pem",
];

#[test]
fn without_tls_listen_there_is_one_plaintext_listener() {
    let b = rendered(&[]);
    let listeners = b["static_resources"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1);
    assert!(listeners[0]["filter_chains"][0]
        .get("transport_socket")
        .is_none());
    assert!(b.get("node").is_none());
}

#[test]
fn tls_listener_has_modern_defaults_and_the_same_connection_manager() {
    let b = rendered(&FILES);
    let listeners = b["static_resources"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2);
    let tls = &listeners[1];
    assert_eq!(tls["address"]["socket_address"]["port_value"], 8443);
    let socket = &tls["filter_chains"][0]["transport_socket"];
    assert_eq!(socket["name"], TLS_TRANSPORT_SOCKET);
    let ctx = &socket["typed_config"];
    assert!(ctx["@type"]
        .as_str()
        .unwrap()
        .ends_with("tls.v3.DownstreamTlsContext"));
    let common = &ctx["common_tls_context"];
    assert_eq!(
        common["tls_params"]["tls_minimum_protocol_version"],
        "TLSv1_2"
    );
    let suites = common["tls_params"]["cipher_suites"].as_array().unwrap();
    assert!(suites.iter().all(|s| {
        let s = s.as_str().unwrap();
        s.starts_with("ECDHE-") && (s.contains("GCM") || s.contains("CHACHA20"))
    }));
    assert_eq!(
        common["alpn_protocols"],
        serde_json::json!(["h2", "http/1.1"])
    );
    assert_eq!(
        common["tls_certificates"][0]["certificate_chain"]["filename"],
        "/c.pem"
    );
    assert!(common.get("validation_context").is_none());
    assert!(ctx.get("require_client_certificate").is_none());
    // The same connection manager (meshgate's filter, routes) under its own stat prefix.
    let plain = &listeners[0]["filter_chains"][0]["filters"][0]["typed_config"];
    let mut over_tls = tls["filter_chains"][0]["filters"][0]["typed_config"].clone();
    assert_eq!(over_tls["stat_prefix"], "gateway_tls");
    over_tls["stat_prefix"] = plain["stat_prefix"].clone();
    assert_eq!(&over_tls, plain);
}

#[test]
fn sds_file_certificate_names_a_node() {
    let b = rendered(&[
        "--tls-listen",
        "127.0.0.1:8443",
        "--tls-sds",
        "/etc/sds.yaml",
    ]);
    let common = &b["static_resources"]["listeners"][1]["filter_chains"][0]["transport_socket"]
        ["typed_config"]["common_tls_context"];
    let sds = &common["tls_certificate_sds_secret_configs"][0];
    assert_eq!(sds["name"], DEFAULT_SDS_SECRET);
    assert_eq!(
        sds["sds_config"]["path_config_source"]["path"],
        "/etc/sds.yaml"
    );
    assert!(common.get("tls_certificates").is_none());
    assert_eq!(b["node"]["id"], "meshgate");
    let file = serde_json::to_value(sds_file("s", "/c", "/k")).unwrap();
    assert!(file["resources"][0]["@type"]
        .as_str()
        .unwrap()
        .ends_with("tls.v3.Secret"));
    assert_eq!(
        file["resources"][0]["tls_certificate"]["private_key"]["filename"],
        "/k"
    );
}

#[test]
fn https_redirect_turns_the_plaintext_listener_into_a_redirect() {
    let mut args = FILES.to_vec();
    args.push("--https-redirect");
    let b = rendered(&args);
    let plain =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert!(plain.get("http_filters").unwrap().as_array().unwrap().len() == 1);
    let route = &plain["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(route["redirect"]["https_redirect"], true);
    assert_eq!(route["redirect"]["port_redirect"], 8443);
}

#[test]
fn client_certificates_optional_or_required() {
    let mut args = FILES.to_vec();
    args.extend(["--client-certs", "required", "--client-ca", "/ca.pem"]);
    let b = rendered(&args);
    let ctx = &b["static_resources"]["listeners"][1]["filter_chains"][0]["transport_socket"]
        ["typed_config"];
    assert_eq!(ctx["require_client_certificate"], true);
    assert_eq!(
        ctx["common_tls_context"]["validation_context"]["trusted_ca"]["filename"],
        "/ca.pem"
    );
    args[7] = "optional";
    let b = rendered(&args);
    let ctx = &b["static_resources"]["listeners"][1]["filter_chains"][0]["transport_socket"]
        ["typed_config"];
    assert!(ctx.get("require_client_certificate").is_none());
    assert!(ctx["common_tls_context"]
        .get("validation_context")
        .is_some());
}

#[test]
fn options_that_would_do_nothing_are_refused() {
    for (args, needle) in [
        (
            vec!["--tls-cert", "/c", "--tls-key", "/k"],
            "needs --tls-listen",
        ),
        (vec!["--https-redirect"], "needs --tls-listen"),
        (vec!["--tls-listen", "127.0.0.1:1"], "needs --tls-cert"),
        (
            FILES
                .iter()
                .copied()
                .chain(["--client-certs", "required"])
                .collect(),
            "--client-ca",
        ),
        (
            FILES
                .iter()
                .copied()
                .chain(["--client-ca", "/ca"])
                .collect(),
            "--client-certs",
        ),
    ] {
        let err = parse(&args).unwrap_err();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let err = parse(&["--tls-listen", "a:1", "--tls-cert", "/c"]).unwrap_err();
    assert!(err.contains("--tls-key"), "{err}");
    assert_eq!(
        parse(&[FILES.as_slice(), &["--tls-min-version", "1.3"]].concat())
            .unwrap()
            .unwrap()
            .min_version,
        "TLSv1_3"
    );
}

fn with_file(
    args: &[&str],
    file: &crate::config::listener::ListenerTlsInput,
) -> Result<Option<Tls>, String> {
    let argv = std::iter::once("meshgate-envoy").chain(args.iter().copied());
    Cmd::try_parse_from(argv)
        .map_err(|e| e.to_string())
        .and_then(|c| c.tls.tls_with(Some(file)))
}

fn file_tls() -> crate::config::listener::ListenerTlsInput {
    serde_yaml_ng::from_str(
        "{listen: '127.0.0.1:8443', cert: tls/server.pem, key: /etc/k.pem, min_version: '1.3',
          redirect: true, client_certs: required, client_ca: ca.pem}",
    )
    .unwrap()
}

#[test]
fn the_gateway_file_alone_gives_the_tls_listener_its_paths_relative_to_the_file() {
    let file = file_tls().resolved(std::path::Path::new("/srv/gw"));
    let t = with_file(&[], &file).unwrap().unwrap();
    assert_eq!((t.address.as_str(), t.port), ("127.0.0.1", 8443));
    assert_eq!(
        t.certificate,
        Certificate::Files {
            cert: "/srv/gw/tls/server.pem".into(),
            key: "/etc/k.pem".into()
        }
    );
    assert_eq!(t.min_version, "TLSv1_3");
    assert!(t.redirect_plaintext);
    assert_eq!(t.client_certs, ClientCerts::Required);
    assert_eq!(t.client_ca.as_deref(), Some("/srv/gw/ca.pem"));
}

#[test]
fn flags_override_the_gateway_file() {
    let file = file_tls();
    let t = with_file(
        &[
            "--tls-listen",
            "0.0.0.0:9443",
            "--tls-sds",
            "/sds.yaml",
            "--tls-min-version",
            "1.2",
            "--client-certs",
            "off",
        ],
        &file,
    )
    .unwrap()
    .unwrap();
    assert_eq!((t.address.as_str(), t.port), ("0.0.0.0", 9443));
    assert_eq!(
        t.certificate,
        Certificate::Sds {
            path: "/sds.yaml".into(),
            secret: DEFAULT_SDS_SECRET.into()
        }
    );
    assert_eq!(t.min_version, "TLSv1_2");
    assert_eq!((t.client_certs, t.client_ca), (ClientCerts::Off, None));
    // Still the file's where no flag says otherwise.
    assert!(t.redirect_plaintext);
}

#[test]
fn bad_or_idle_file_settings_are_refused_by_field() {
    let mut f = file_tls();
    f.client_certs = Some("maybe".into());
    let err = with_file(&[], &f).unwrap_err();
    assert!(err.contains("listener.tls.client_certs"), "{err}");
    let mut f = file_tls();
    f.listen = Some("nowhere".into());
    let err = with_file(&[], &f).unwrap_err();
    assert!(err.contains("listener.tls.listen"), "{err}");
    let mut f = file_tls();
    f.listen = None;
    let err = with_file(&[], &f).unwrap_err();
    assert!(
        err.contains("needs --tls-listen (listener.tls.listen)"),
        "{err}"
    );
    let mut f = file_tls();
    f.min_version = Some("1.1".into());
    assert!(with_file(&[], &f)
        .unwrap_err()
        .contains("listener.tls.min_version"));
}
