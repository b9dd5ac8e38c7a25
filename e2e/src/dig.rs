//! Asking a DNS server with `dig`, as an operator would.

use std::net::SocketAddr;

use anyhow::Context as _;

/// What `dig` saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigAnswer {
    /// The response code, e.g. `NOERROR`.
    pub status: String,
    /// The flags, e.g. `["qr", "aa"]`.
    pub flags: Vec<String>,
    /// The answer section's rdata, in order.
    pub answers: Vec<String>,
}

/// Runs `dig @server -p port name type` (UDP, no recursion wanted) and parses its output.
pub async fn dig(server: SocketAddr, name: &str, record_type: &str) -> anyhow::Result<DigAnswer> {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args([
            "+norecurse",
            "+time=1",
            "+tries=2",
            "+nocomments",
            "+noquestion",
        ])
        .args(["+nostats", "+cmd", "+comments"])
        .arg(name)
        .arg(record_type)
        .output()
        .await
        .context("running dig (Debian package dnsutils)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "dig {name} {record_type} @{server} failed: {text}"
    );
    parse(&text).with_context(|| format!("parsing dig's output:\n{text}"))
}

fn parse(text: &str) -> anyhow::Result<DigAnswer> {
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .context("no status")?
        .to_owned();
    let flags = text
        .split(";; flags: ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .context("no flags")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let answers = text
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|section| {
            section
                .lines()
                .take_while(|line| !line.is_empty())
                .filter_map(|line| line.split_whitespace().nth(4).map(|_| line))
                .map(|line| {
                    line.split_whitespace()
                        .skip(4)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DigAnswer {
        status,
        flags,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_flags_and_answers() {
        let text = "; <<>> DiG 9.18 <<>> @198.18.0.2 -p 5353 www.example.com A\n\
            ;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n\
            ;; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n\n\
            ;; ANSWER SECTION:\nwww.example.com.\t300\tIN\tA\t192.0.2.1\n\n";
        let answer = parse(text).unwrap();
        assert_eq!(answer.status, "NOERROR");
        assert_eq!(answer.flags, ["qr", "aa"]);
        assert_eq!(answer.answers, ["192.0.2.1"]);
    }
}
