//! Webhook signatures: `X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! The body carries `sent_at` (also sent as `X-Vigil-Timestamp`), so the
//! signature covers the time too: a receiver that checks the signature and
//! refuses an old `sent_at` cannot be fed a replayed request.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Vigil-Signature";
/// Header carrying the send time (RFC 3339), equal to the body's `sent_at`.
pub const TIMESTAMP_HEADER: &str = "X-Vigil-Timestamp";
/// Header carrying the delivery id, the receiver's idempotency key.
pub const DELIVERY_HEADER: &str = "X-Vigil-Delivery";

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` (constant-time comparison).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_refuses_changed_body_key_or_format() {
        let s = signature(b"k", b"{\"a\":1}");
        assert!(verify(b"k", b"{\"a\":1}", &s));
        assert!(!verify(b"k", b"{\"a\":2}", &s));
        assert!(!verify(b"other", b"{\"a\":1}", &s));
        assert!(!verify(b"k", b"{\"a\":1}", s.trim_start_matches("sha256=")));
        assert!(!verify(b"k", b"{\"a\":1}", "sha256=zz"));
    }
}
