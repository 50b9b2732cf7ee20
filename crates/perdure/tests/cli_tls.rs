//! TLS end to end: a TLS-terminating proxy (rustls, requiring a client certificate) in front of a
//! real `perdure server start-dev`, with certificates made by `openssl` for this test. The Rust
//! SDK's client, `perdure` (connection flags before or after the command) and the official
//! `temporal` CLI all reach the server through it with mutual TLS; without the CA or without a
//! client certificate the connection is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{perdure_cmd, server_with, temporal_bin};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// Runs `openssl ARGS` in `dir`, panicking with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is needed for the TLS test");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by
/// the CA (P-256 keys).
fn make_certificates() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perdure-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Perdure test CA",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        let (key, csr, pem, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.pem"),
            format!("{who}.ext"),
        );
        openssl(
            &dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN=perdure-{who}"),
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
    dir
}

/// Listens with TLS on a free port (client certificates signed by the CA required, ALPN h2 as
/// gRPC needs) and forwards every connection to `backend`. Returns the port.
fn tls_proxy(certs: &Path, backend: String) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = CertificateDer::from_pem_file(certs.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let chain = CertificateDer::pem_file_iter(certs.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs.join("server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    // A handshake the proxy refuses (no or a wrong client certificate) just
                    // closes the connection, as a TLS server does.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    port
}

#[test]
fn mutual_tls_through_a_terminating_proxy() {
    let certs = make_certificates();
    let server = server_with(&[]);
    let port = tls_proxy(&certs, server.address.clone());
    let address = format!("127.0.0.1:{port}");
    let path = |f: &str| certs.join(f).to_string_lossy().into_owned();
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));

    // The Rust SDK's client with a client identity.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options =
            perdure_sdk::ClientOptions::new(address.clone()).tls(perdure_sdk::TlsOptions {
                domain: Some("localhost".into()),
                ca_pem: Some(std::fs::read(&ca).unwrap()),
                client_identity: Some(perdure_sdk::ClientIdentity {
                    cert_pem: std::fs::read(&cert).unwrap(),
                    key_pem: std::fs::read(&key).unwrap(),
                }),
            });
        let client = perdure_sdk::Client::connect(options)
            .await
            .expect("SDK over mTLS");
        client
            .start_workflow(
                "tls-wf",
                (1,),
                perdure_sdk::StartOptions::new("tls-sdk", "tls-q"),
            )
            .await
            .expect("start over mTLS");
    });

    // perdure, flags after the command group and before it.
    let tls_flags = [
        "--tls-ca-path",
        &ca,
        "--tls-cert-path",
        &cert,
        "--tls-key-path",
        &key,
    ];
    let run = |args: &[&str]| {
        let out = perdure_cmd().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&[
        &[
            "workflow",
            "start",
            "--address",
            &address,
            "-t",
            "tls-q",
            "--type",
            "tls-wf",
            "-w",
            "tls-cli",
        ][..],
        &tls_flags,
    ]
    .concat());
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&[
        &["--address", &address][..],
        &tls_flags,
        &["-o", "json", "workflow", "list"],
    ]
    .concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("tls-sdk") && out.contains("tls-cli"), "{out}");

    // The official temporal CLI with the same flags.
    let out = Command::new(temporal_bin())
        .args([
            "workflow",
            "describe",
            "-w",
            "tls-cli",
            "--address",
            &address,
        ])
        .args(tls_flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // Refusals: no client certificate, and a server whose CA we do not trust.
    let (code, _, err) = run(&[
        "workflow",
        "list",
        "--address",
        &address,
        "--tls-ca-path",
        &ca,
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("Error:"), "{err}");
    let (code, _, err) = run(&["workflow", "list", "--address", &address, "--tls"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("Error:"), "{err}");
    let (code, _, err) = run(&[
        "workflow",
        "list",
        "--address",
        &address,
        "--tls-cert-path",
        &cert,
        "--tls-ca-path",
        &ca,
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("needs both a client certificate and its key"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&certs);
}
