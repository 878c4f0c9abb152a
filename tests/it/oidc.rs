//! OIDC bearer tokens on Pub/Sub push deliveries (`verify.oidc`), over real
//! HTTP: tokens signed with RSA keys made for these tests, the issuer's
//! JWKS served on loopback, and every way a token can be wrong answered 401
//! naming the check — never echoing the token — with nothing stored.

use std::path::Path;

use base64::Engine as _;
use host::app::App;
use host::config::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::db::{TestDb, sqlite};
use crate::fake_api::{Call, FakeApi};
use crate::helpers::Running;

/// What the tests' push subscription is configured with.
pub const AUDIENCE: &str = "https://sluice.test/hooks/gmail";
pub const PUSH_EMAIL: &str = "gmail-push@axion-test.iam.gserviceaccount.com";
pub const ISSUER: &str = "https://accounts.google.com";
/// The push endpoint's `?token=` (the `gmail` preset's shared token).
pub const PUSH_TOKEN: &str = "pubsub-push-token-0123456789";

/// Test key A: its private half (PKCS#1 PEM) and its JWK modulus.
pub const KEY_A_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA4ueso1eGaJA8V+4AVh2qnCM81M/ipJm4BVZxeUlHGKFSu0Qq
PVFvtaRcR9i1sG6rmlDiCIoMy3/cY2iK2MTJ8AyYtGW/GyUY0lorH2CsHcV8/HPo
sUacrlR8arBpPofMgzc6bJAtTKbFUP04PBf4WLI6KC42gqAl35z1GMHcbgCBp27j
fJzFUsKUhC24IEaEmbpAltTBEckQA2vgdmZ1Ob2Tbfsd/HAD/4Yro2bodXYAcTvb
hTSaOlYpmyGg1FH0dCjZzAmDYjyoGPvpMJ9X0Y0LMj3Wz6vPbwnkpr4xgtvrBZWI
CQOOgFnH9YkXFv+1Lo0XLHhIDnAkgzmwE+oAaQIDAQABAoIBAAf0WjuBsn8Q62Sj
vdRHBvehTp0hSo89qlNZk/HODVWCNk3FVnu+0p06DVghc0EjqBVpV3s4J7msmlPL
0u5Fe9TUBDhyxq/TbZrWOWPItk/23+pTv+kTEiQUZyYwWAgup49EDOLIbSYeRJWR
wvpsVrL5UIufDx8mMR21OWxsQ2eBwSMdHpcjGMYeLX0luHPoRd6suPVBJlCL+pzb
KY2NT3axvel8WDeD07O380bY7X9xCKM64pySkv8CxEweOwbu7PgoKfD+8z91LrE3
Bl5cFtw3F1QuFvn1/GMRXjz5rFDddxTrM2vhZyjCsdGNYmgP+qpg1Rta7KdKJnTR
lsv7yscCgYEA9XBDxGKDPkz89xwNoT0oWeIq4GnVDlg0ML7yTNoYqB6SIWpTOj3d
D3Gzf0UWDhbhFADLFkaeIMH3R7ptr5iS4kCvjA53f/3ERNP1URoMekPr6txkOjxQ
Dh6KR9lEtenLo4jwrjc6UQYd2i7TojZiIiwe45ZIZQt9D6jQq+nWDtMCgYEA7Ks+
w+1lslfXmSLoJIXGHCBKKmph2zTJDqRFKTsn+HM6iBtcYFVwcecOybIkBYF0UqSH
hNhj0u90hS9BNrBbvwNEeiAxqKWM7dawu0F6KQKTaoO18COaVmVOfti9B6fL0HEU
dhWp7NfKxHcvI0OhOdRM8VLFazSORQxS4qxExlMCgYEAge8gASyB/I53cT6pvI2K
+iKwvkNo5oIthwzfa24elYoxpH0MeI3dpNp1w0/IwEa+e398BFv4RLFK/u8kOEzW
ne7OwJ+8BcdLi4CGo5vdtTCWCa0JZocdfowOesD8Di4qf3X0rNZSCijpzuLxaTPP
OfYPmD6sLsopOAwQBKLzjr8CgYBdTLUVsETjJdYMvMIfg80x0Vjrl7y0Gf8ZEpFh
S7zaKTLt7Tthjs0hWiFuShgBQ6OD4PC74kKYKWYaCyL+WFAS4UrhikeJYJpKONS7
PXjXKfjLiNj0rlRtsspbHz6GAhRLPAkA9FFk2T1KbmHa2RJ6JcOfby38sV9UwSL7
0UXbmQKBgQDTxZO1XKpWM3MZjuGA7Zw+6A8yOROfBd3RPvMHCr0QlV8JRYZBAg1I
Est3tOZIhn4LdZGZ0QaM8e+a1x1Ui6jdkX4Qj/cW5DM1t2HGzj+KaKs+jxMUD6v0
3arfuIKD9zZzlDo886xF6faJYHcnAVQdwVK4EddO8jWAX9rQC/GZpQ==
-----END RSA PRIVATE KEY-----
";
pub const KEY_A_N: &str = "4ueso1eGaJA8V-4AVh2qnCM81M_ipJm4BVZxeUlHGKFSu0QqPVFvtaRcR9i1sG6rmlDiCIoMy3_cY2iK2MTJ8AyYtGW_GyUY0lorH2CsHcV8_HPosUacrlR8arBpPofMgzc6bJAtTKbFUP04PBf4WLI6KC42gqAl35z1GMHcbgCBp27jfJzFUsKUhC24IEaEmbpAltTBEckQA2vgdmZ1Ob2Tbfsd_HAD_4Yro2bodXYAcTvbhTSaOlYpmyGg1FH0dCjZzAmDYjyoGPvpMJ9X0Y0LMj3Wz6vPbwnkpr4xgtvrBZWICQOOgFnH9YkXFv-1Lo0XLHhIDnAkgzmwE-oAaQ";

/// Test key B: its private half (PKCS#1 PEM) and its JWK modulus.
pub const KEY_B_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAp51hbg06khELUodjGR1OOtPeSZg8mEU4F3Yla+tVlbrarvIb
QfSPxs3ebPIvjOQFotpbXTCJCKN5P+1J514DbjjHk2JbE/LQXZkWVm6iImlI72bY
Cdae8v6KGOBI8GoIvvsZMgle3Q/Fdrxa3e3cgtbyMqgIOLWmioemGXlAgYdo/4+F
lY/izEom3oNdO0YCrIfcY7CfcfWMwrlGnwYvfFpQW1d0YTmOPUkY8kt8s5YLcVVE
nHedNoJvcXHf0ceZHnEYIJMmd+uQpf7Ppgw9hsQYr8IxJVP/B3+ENdUEejhx4aqz
D4p8G72f9EHDrZ9vv2GHyi9RfeGhHWcyOYCFJQIDAQABAoIBAEKjc/JkiQY8h4Na
tz/rYkhKJoSc5W5miqvtOWiECiU6wimusL6SpDzWaVloGhaKK2F5LbzJiJmqIJEV
Xn4BZxzBrzr97hbqwQONUw+u8X/72tbvTPHwZYZXQ4ErXmRSy8JeI0C87/20gP25
WekE4dgU6/rOymH9ekZ2MsfK6KX2Er8lXGtOi1nTbRNxzPUsG0AvJWv21gBJuaCU
ZCYD9KeQS0DzA403KY5auEVnmbsTrEpp4QHDhWSprmxpEGozBUCn45i2lGoGrnNF
mpWxSTXkJI5+g6PsaRPDbsVj5f46KLgDBjVjlFpwMq0em9weu81ZSRH80qwac105
2drUFhsCgYEA0x95S92YejIVmKKwa5it2FFyaBYqAtBtoN+aNXnTFeYnouFPAudV
94kVNylntKRIafFUrEHdHSk8Vx2aNYIg87TU5JO+0X/U6SPHupeyJ9qqYqtiodlp
pscCF8VeRduT+omYf9VyWA0dkD58GIiHEzEFUrmQo0kd5DFwlLLmfU8CgYEAyz5a
fDqBEBBjwblMNQ0GaN7ddGPiqg+PmIH5hdC6AgGO50ulSt2m3IqIB0vJeSWoDucN
VFAp+w5v9tUjFIYO/DEUYCaIZtNITRuNIzOPpcgHquYHCxqw1UGIA8nDZFmAS5nD
yH3vMSipVdCDc7G6GryEnTgPJdQS49Pk+nSbgUsCgYEArh/zRqMJMx9DuJPVtahD
GXpzRW2iUJffEyPYZ+qGMjWU0z3IkLiDqpkhKlG3+sDUCKzGDRx1Zauw3JjJqwAc
dWPbgnpokxk/XNnpzPd4NG6gwKhhvOM3xBm2nCxoSG2Fask5QZWlrQGENIeUihdw
cF+p6ESsCkAvqxkrpTi36PkCgYBsuZ+IQ3fVkx76fFjjLGOYaFjJscGIvihQKn/E
cSOAfTroStRS134zDry0Qnu2HknoJvw/dV7v2gpVXjGVAh40FUFUKmjfsPlFno6D
HUskIXzQlJuB+jZM7vCHLkEjhqmWR9yvfYceoiTsLk6T7qijMuQygtG/p9KvJCSj
QwwJPwKBgQC8bkZ9W+V1pNO+Vz3Vv7k2UUxMcT792sc0+TifYhKH2PpXc4Wmx4X1
E0Hjyd51pLQmjWbX+2CY2pc2rOO2/zSgEyuTDBIfLUadqaLczeKVusP1aQOl3Gii
GdC9XaHJMJv3/XZQK9PB5lyWm3H/dvYFzGo+rnRS07pqO8+eRvyPew==
-----END RSA PRIVATE KEY-----
";
pub const KEY_B_N: &str = "p51hbg06khELUodjGR1OOtPeSZg8mEU4F3Yla-tVlbrarvIbQfSPxs3ebPIvjOQFotpbXTCJCKN5P-1J514DbjjHk2JbE_LQXZkWVm6iImlI72bYCdae8v6KGOBI8GoIvvsZMgle3Q_Fdrxa3e3cgtbyMqgIOLWmioemGXlAgYdo_4-FlY_izEom3oNdO0YCrIfcY7CfcfWMwrlGnwYvfFpQW1d0YTmOPUkY8kt8s5YLcVVEnHedNoJvcXHf0ceZHnEYIJMmd-uQpf7Ppgw9hsQYr8IxJVP_B3-ENdUEejhx4aqzD4p8G72f9EHDrZ9vv2GHyi9RfeGhHWcyOYCFJQ";

/// The JWKS of key A (`key-a`), and of key B (`key-b`) too when `with_b`.
pub fn jwks(with_b: bool) -> Value {
    let jwk = |kid: &str, n: &str| json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": n, "e": "AQAB"});
    let mut keys = vec![jwk("key-a", KEY_A_N)];
    if with_b {
        keys.push(jwk("key-b", KEY_B_N));
    }
    json!({ "keys": keys })
}

/// Claims of a good token at `now`.
pub fn claims(now: i64) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "azp": "1122334455",
        "sub": "1122334455",
        "email": PUSH_EMAIL,
        "email_verified": true,
        "iat": now,
        "exp": now + 3600,
    })
}

/// `claims` signed RS256 with `pem` under key id `kid`.
pub fn token(pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A Pub/Sub push body announcing Gmail history `history_id` as message `id`.
pub fn push_body(id: &str, email: &str, history_id: u64) -> Vec<u8> {
    let data = json!({"emailAddress": email, "historyId": history_id}).to_string();
    json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "messageId": id,
            "message_id": id,
            "publishTime": "2026-11-30T09:00:00.000Z",
            "attributes": {}
        },
        "subscription": "projects/axion-test/subscriptions/gmail-push"
    })
    .to_string()
    .into_bytes()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

struct Push {
    base: String,
    http: reqwest::Client,
    running: Running,
    jwks: FakeApi,
    db: TestDb,
}

/// A host with two Pub/Sub providers on one JWKS: `gmail` re-reads it at
/// most once an hour, `rotating` whenever a token names an unknown key.
/// The JWKS holds key B from its third read on (a rotation).
async fn spawn() -> Push {
    let (jwks_url, jwks) = FakeApi::start(|_: &Call, n| jwks(n >= 3)).await;
    let db = sqlite().await;
    let oidc = |refresh: u64| {
        format!(
            "{{jwks_url: \"{jwks_url}/certs\", audience: \"{AUDIENCE}\", email: {PUSH_EMAIL}, refresh_secs: {refresh}}}"
        )
    };
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
providers:
  gmail: {{verify: {{secret: {PUSH_TOKEN}, oidc: {a}}}}}
  rotating: {{verify: {{preset: gmail, secret: {PUSH_TOKEN}, oidc: {b}}}}}
"#,
        db = db.url,
        a = oidc(3600),
        b = oidc(0),
    );
    let config = Config::parse(&yaml, Path::new("/push.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
    Push {
        base,
        http: reqwest::Client::new(),
        running,
        jwks,
        db,
    }
}

impl Push {
    async fn post(&self, provider: &str, token: Option<&str>, id: &str) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/hooks/{provider}?token={PUSH_TOKEN}", self.base))
            .header("content-type", "application/json")
            .body(push_body(id, "support@axion.test", 1000));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Posts with `token`, expects 401 whose message contains `why` and
    /// does not contain the token.
    async fn refused(&self, provider: &str, token: &str, id: &str, why: &str) {
        let (status, body) = self.post(provider, Some(token), id).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "expected `{why}` in {body}");
        assert!(
            !body.to_string().contains(token),
            "the token is echoed: {body}"
        );
    }

    /// Every request the JWKS server had (all of them reads of `/certs`).
    fn jwks_reads(&self) -> usize {
        self.jwks.all().len()
    }
}

#[tokio::test]
async fn pubsub_push_needs_a_google_signed_token_for_the_subscription() {
    let push = spawn().await;
    let t = now();

    let good = token(KEY_A_PEM, "key-a", &claims(t));
    let (status, body) = push.post("gmail", Some(&good), "m-1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(push.jwks_reads(), 1);
    // Verified once, the key is cached: no second read.
    let (status, _) = push.post("gmail", Some(&good), "m-2").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(push.jwks_reads(), 1);

    let (status, body) = push.post("gmail", None, "m-3").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.to_string().contains("missing bearer token"), "{body}");

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(t);
        f(&mut c);
        token(KEY_A_PEM, "key-a", &c)
    };
    let expired = with(&|c| {
        c["iat"] = json!(t - 7200);
        c["exp"] = json!(t - 3600);
    });
    push.refused("gmail", &expired, "m-4", "expired").await;
    // Within the leeway (60 s) an expired token still passes.
    let just_expired = with(&|c| c["exp"] = json!(t - 30));
    assert_eq!(
        push.post("gmail", Some(&just_expired), "m-5").await.0,
        StatusCode::ACCEPTED
    );
    let future = with(&|c| c["iat"] = json!(t + 600));
    push.refused("gmail", &future, "m-6", "issued in the future")
        .await;
    let audience = with(&|c| c["aud"] = json!("https://elsewhere.test/push"));
    push.refused("gmail", &audience, "m-7", "audience (`aud`)")
        .await;
    let issuer = with(&|c| c["iss"] = json!("https://evil.test"));
    push.refused("gmail", &issuer, "m-8", "issuer (`iss`)")
        .await;
    let email = with(&|c| c["email"] = json!("someone@axion-test.iam.gserviceaccount.com"));
    push.refused(
        "gmail",
        &email,
        "m-9",
        "`email` is not the configured service account",
    )
    .await;
    let unverified = with(&|c| c["email_verified"] = json!(false));
    push.refused("gmail", &unverified, "m-10", "`email_verified`")
        .await;
    let no_exp = with(&|c| {
        c.as_object_mut().unwrap().remove("exp");
    });
    push.refused("gmail", &no_exp, "m-11", "lacks claim `exp`")
        .await;

    // Signed with key B under key A's id: the signature does not match.
    let forged = token(KEY_B_PEM, "key-a", &claims(t));
    push.refused("gmail", &forged, "m-12", "signature does not match")
        .await;
    // A body changed under a good signature.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut c = claims(t);
    c["email"] = json!("attacker@evil.test");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
    push.refused(
        "gmail",
        &parts.join("."),
        "m-13",
        "signature does not match",
    )
    .await;

    // `alg: none`, and HS256 keyed with the public key's modulus: refused
    // on the algorithm, before any key is looked at.
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "key-a"})),
        b64(&claims(t))
    );
    push.refused("gmail", &none, "m-14", "algorithm `none` is not RS256")
        .await;
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("key-a".into());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &claims(t),
        &EncodingKey::from_secret(KEY_A_N.as_bytes()),
    )
    .unwrap();
    push.refused("gmail", &hs256, "m-15", "algorithm `HS256` is not RS256")
        .await;
    push.refused("gmail", "not-a-jwt", "m-16", "not a JWT")
        .await;

    // Unknown key ids: the JWKS was read moments ago, so forged kids do
    // not make the host read it again.
    let reads = push.jwks_reads();
    for (i, kid) in ["forged-1", "forged-2", "forged-3"].iter().enumerate() {
        let t2 = token(KEY_A_PEM, kid, &claims(t));
        push.refused(
            "gmail",
            &t2,
            &format!("m-k{i}"),
            &format!("key `{kid}` is not among"),
        )
        .await;
    }
    assert_eq!(
        push.jwks_reads(),
        reads,
        "forged key ids must not re-read the JWKS"
    );

    // A provider that may re-read at once picks up a rotated key: its
    // first read (the JWKS's second) has key A only, the next one key B.
    let a = token(KEY_A_PEM, "key-a", &claims(t));
    assert_eq!(
        push.post("rotating", Some(&a), "r-1").await.0,
        StatusCode::ACCEPTED
    );
    let b = token(KEY_B_PEM, "key-b", &claims(t));
    let (status, body) = push.post("rotating", Some(&b), "r-2").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(push.jwks_reads(), reads + 2);

    // The token is never stored: `Authorization` is redacted.
    let id = push.post("gmail", Some(&good), "m-17").await.1["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = push.db.store.delivery(&id).await.unwrap().unwrap();
    let auth = stored.headers.iter().find(|(n, _)| n == "authorization");
    assert_eq!(auth.map(|(_, v)| v.as_str()), Some("[redacted]"));
    // The JWKS is read with no credentials.
    let reads = push.jwks.calls("GET", "/certs");
    assert!(reads.iter().all(|c| c.header("authorization").is_none()));
    push.running.stop().await;
}
