//! `wss://` and `https://` verify certificates by default (rustls with the web PKI roots): a
//! server with a self-signed certificate is refused, and accepted once its root is trusted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::within;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tidings::{Error, ReconnectConfig, Tidings, TransportConfig, TransportKind};
use tokio_rustls::rustls;

const T: Duration = Duration::from_secs(10);

/// A socketioxide server behind a TLS terminator with a fresh self-signed certificate for
/// `localhost`; returns the TLS port and the certificate (DER).
async fn tls_server() -> (u16, Vec<u8>) {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |s: SocketRef| {
        s.on("echo", async |Data(d): Data<Value>, ack: AckSender| {
            ack.send(&d).ok();
        });
    });
    let app = axum::Router::new().layer(layer);
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = plain.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(plain, app).await.ok() });

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = cert.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone().into()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate aborts the handshake: nothing to relay.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (port, der)
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_on_wss_and_https() {
    let (port, _) = tls_server().await;
    for (url, transport) in [
        (format!("wss://localhost:{port}"), TransportKind::WebSocket),
        (format!("https://localhost:{port}"), TransportKind::Polling),
    ] {
        let connect = Tidings::builder(&url)
            .transports(TransportConfig::only(transport))
            .reconnect(ReconnectConfig { max_attempts: Some(0), ..ReconnectConfig::default() })
            .connect();
        let err = within(T, "connecting", connect).await.unwrap_err();
        match err {
            Error::Connect(e) => assert!(!e.will_retry, "{e:?}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_trusted_root_connects_over_wss_and_https() {
    let (port, der) = tls_server().await;
    for transport in [TransportKind::WebSocket, TransportKind::Polling] {
        let connect = Tidings::builder(&format!("https://localhost:{port}"))
            .add_root_certificate(der.clone())
            .transports(TransportConfig::only(transport))
            .connect();
        let client = within(T, "connecting", connect).await.unwrap();
        let ack = client.emit_with_ack("echo", &json!({"secure": true}), T).await.unwrap();
        assert_eq!(ack.deserialize::<Value>().unwrap(), json!({"secure": true}));
        within(T, "closing", client.close()).await;
    }
}
