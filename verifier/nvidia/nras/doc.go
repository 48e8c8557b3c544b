// Package nras is a client for the NVIDIA Remote Attestation Service (NRAS)
// v4: it sends GPU or NVSwitch evidence to POST <base>/v4/attest/{gpu,switch},
// verifies the detached EAT NRAS answers and returns the per-device claims.
//
// The response is [["JWT", overall], {"GPU-0": device, …}]. Unlike Trustee's
// NVIDIA verifier in Remote mode, which checks only the two ES384 signatures
// and exp, VerifyDetachedEAT checks everything NVIDIA's own SDK does:
//
//   - every JWT (overall and each device) is a compact JWS with alg ES384 and a
//     kid naming a P-384 key of the JWKS; the raw r‖s signature over
//     header.payload verifies;
//   - exp (required), nbf and iat against an injected clock with a small
//     leeway;
//   - the overall iss (and each device iss, when present) equals the expected
//     issuer, by default the configured base URL;
//   - the overall eat_nonce (and each device eat_nonce, when present) equals
//     the hex of the request nonce, case-insensitively;
//   - the overall submods map names exactly the device JWTs present, and each
//     entry ["DIGEST", ["SHA-256", <hex>]] is the digest of the ASCII bytes of
//     that device's compact JWT.
//
// The JWKS is fetched from <base>/.well-known/jwks.json (not a hard-coded
// production URL), cached by kid and refetched, at most once per
// Options.JWKSMinRefresh, when a token names an unknown kid. A key is built
// from x/y or, when those are absent, from the public key of x5c[0]; when both
// are present they must agree. The x5c chain itself is not validated (NVIDIA's
// SDKs trust the JWKS over TLS; the root is not in x5c).
//
// Verification establishes that NRAS said something about this nonce; what
// it said (x-nvidia-overall-att-result, measres, the nonce-match and
// signature-verified claims…) is passed through as claims for the policy.
// Result.CheckNonceMatch reproduces Trustee's one hard requirement on the
// device claims.
//
// JWT segments are decoded as base64url without padding (RFC 7515), not with
// the standard alphabet Trustee uses.
package nras
