//! A minimal HTTP/1.0 client for the two loopback requests the tool makes:
//! `POST /api/token` and `GET /metrics`. HTTP/1.0 keeps the answer simple to
//! read: no chunking, the body ends when the server closes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request; returns the status code and the body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json_body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        let body = json_body.unwrap_or("");
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
        if json_body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).await?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await?;
        parse_response(&resp)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| anyhow::anyhow!("{method} {path} timed out"))?
}

pub fn parse_response(resp: &[u8]) -> anyhow::Result<(u16, String)> {
    let text = String::from_utf8_lossy(resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP status line"))?;
    Ok((status, body.to_owned()))
}

/// The value of an unlabelled sample (or the sum over all label sets) of a
/// metric in Prometheus text format.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric_name = key.split('{').next().unwrap_or("");
        if metric_name == name {
            if let Ok(v) = value.parse::<f64>() {
                *found.get_or_insert(0.0) += v;
            }
        }
    }
    found
}

/// The samples of a metric by the value of one label, e.g. drops by reason.
pub fn metric_by_label(text: &str, name: &str, label: &str) -> Vec<(String, f64)> {
    let prefix = format!("{name}{{");
    let key = format!("{label}=\"");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some(start) = series.find(&key).map(|i| i + key.len()) else {
            continue;
        };
        let Some(len) = series[start..].find('"') else {
            continue;
        };
        if let Ok(v) = value.parse::<f64>() {
            out.push((series[start..start + len].to_owned(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_body_and_metrics() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n{\"x\":1}").unwrap();
        assert_eq!((s, b.as_str()), (200, "{\"x\":1}"));
        assert!(parse_response(b"garbage").is_err());
        let m = "# TYPE a counter\na 5\nb{r=\"x\"} 2\nb{r=\"y\"} 3\nab 9\n";
        assert_eq!(metric(m, "a"), Some(5.0));
        assert_eq!(metric(m, "b"), Some(5.0));
        assert_eq!(metric(m, "c"), None);
        assert_eq!(
            metric_by_label(m, "b", "r"),
            vec![("x".to_owned(), 2.0), ("y".to_owned(), 3.0)]
        );
    }
}
