//! Blocking HTTP GETs (the provider's `/models`, Prometheus' API). Errors never include the
//! request's headers, so a key sent as `authorization` is never printed.

use std::time::Duration;

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url` (with `query` parameters and an optional bearer token): (status, body).
pub fn get(
    url: &str,
    query: &[(&str, &str)],
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut req = agent(timeout).get(url);
    for (k, v) in query {
        req = req.query(*k, *v);
    }
    if let Some(token) = bearer {
        req = req.header("authorization", &format!("Bearer {token}"));
    }
    let mut resp = req.call().map_err(|e| describe(&e))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(|e| describe(&e))?;
    Ok((status, body))
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
