//! A small HTTP/1.1 client for the tests: one connection per request, JSON in and out,
//! and watch streams read line by line.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sidecar_kit_fakeapi::FakeApi;
use tokio::net::TcpStream;

pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn new(fake: &FakeApi) -> Client {
        Client {
            addr: fake.addr(),
            token: Some(fake.token().to_string()),
        }
    }

    pub fn with_token(fake: &FakeApi, token: Option<&str>) -> Client {
        Client {
            addr: fake.addr(),
            token: token.map(String::from),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> hyper::Response<Incoming> {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap()
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let resp = self.send(method, path, headers, body).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.raw("GET", path, &[], Vec::new()).await
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        (r.status, r.json())
    }

    pub async fn send_json(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> (u16, Value) {
        let r = self
            .raw(
                method,
                path,
                &[("content-type", content_type)],
                serde_json::to_vec(body).unwrap(),
            )
            .await;
        (r.status, r.json())
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json("POST", path, "application/json", body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json("PUT", path, "application/json", body).await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
        self.send_json("PATCH", path, content_type, body).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.raw("DELETE", path, &[], Vec::new()).await;
        (r.status, r.json())
    }

    /// Opens a watch; the reply must be 200.
    pub async fn watch(&self, path: &str) -> Watch {
        self.watch_with(path, &[]).await
    }

    /// Opens a watch with extra headers; the reply must be 200.
    pub async fn watch_with(&self, path: &str, headers: &[(&str, &str)]) -> Watch {
        let resp = self.send("GET", path, headers, Vec::new()).await;
        assert_eq!(resp.status(), 200, "watch {path}");
        Watch {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }
}

/// A watch response read event by event.
pub struct Watch {
    body: Incoming,
    buf: Vec<u8>,
}

/// How a watch read ended when it did not give an event.
#[derive(Debug, PartialEq)]
pub enum End {
    /// The server ended the response cleanly.
    Closed,
    /// The connection broke (the server dropped the watch).
    Broken,
    /// Nothing within the time allowed.
    Timeout,
}

impl Watch {
    /// The next event, within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Result<Value, End> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(serde_json::from_slice(&line).unwrap());
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return Err(End::Timeout),
                Ok(None) => return Err(End::Closed),
                Ok(Some(Err(_))) => return Err(End::Broken),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The next event (5 s at most: a missing event fails the test).
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("no watch event: {e:?}"))
    }

    /// The next event that is not a BOOKMARK.
    pub async fn next_change(&mut self) -> Value {
        loop {
            let ev = self.next().await;
            if ev["type"] != "BOOKMARK" {
                return ev;
            }
        }
    }
}
