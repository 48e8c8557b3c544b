// Package nvidia verifies NVIDIA GPU (Hopper, Blackwell) and NVSwitch (LS10)
// SPDM evidence locally, as Trustee's "nvidia" verifier in Local mode does,
// and produces both Trustee's local claims and NRAS v3 claim names.
//
// Evidence is Trustee's {"device_evidence_list":[{"arch","uuid","evidence",
// "certificate"}…]}: "evidence" is the SPDM GET_MEASUREMENTS request ‖
// MEASUREMENTS response as hex or standard base64, "certificate" the
// standard base64 of a PEM chain (leaf first, root last).
//
// Per device the verifier checks (genuineness):
//   - the report parses by structure (trailing bytes after the signature
//     are ignored; the signed range comes from the parsed lengths);
//   - the device chain has exactly ChainLength certificates in leaf-to-root
//     order, ends at a pinned root (default: the embedded NVIDIA Device
//     Identity CA) and is valid at Options.Now;
//   - the declared arch is the architecture both the leaf and the BROM
//     certificate name ("GH100 …" Hopper, "GB…" Blackwell, "LS_10 …"
//     LS10): a GPU's evidence declared as a switch is not a genuine switch
//     (ErrArchMismatch);
//   - the ECDSA P-384/SHA-384 signature over the request and the response
//     up to the signature verifies with the leaf key;
//   - the leaf carries the FWID extension and, when the report has an FWID
//     field, both are equal (reports without it, from older drivers and
//     switches, skip the comparison as NVIDIA's verifiers do; the claims
//     record it in "x-sigil-fwid");
//   - the SPDM requester nonce equals the expected report data truncated or
//     zero-padded to 32 bytes.
//
// Then it appraises (claims only, the policy decides): OCSP through a
// RevocationChecker and RIM measurements through a MeasurementAppraiser.
// Unconfigured, their claims say "not-checked" and never claim success.
//
// One verifier.Result per device, in evidence order; class "gpu" for GPUs
// and "switch" for LS10. By default a device whose evidence is not genuine
// still yields a Result whose claims record the failure (so the policy
// contraindicates that submodule without failing the others); with
// Options.FailOnInvalidDevice, Verify instead returns an error. One device
// presented more than once (same leaf or BROM certificate, or same ueid,
// whatever arch it is declared as) always fails Verify
// (ErrDuplicateDevice), so a topology cannot be assembled from copies.
//
// # Claims
//
// Each Result's claims hold, at the top level:
//
//   - Trustee's local-mode claims: "arch" ("Hopper", "Blackwell", "LS10"),
//     "uuid", "measurements" {"<1-based index>": hex} and "config" (the
//     opaque TLVs decoded as Trustee does); for Trustee's Hopper vector they
//     equal its golden file exactly. measurements/config are absent when the
//     report does not parse.
//   - NRAS v3 names with prefix x-nvidia-gpu- or x-nvidia-switch-:
//     arch-check (declared arch = the leaf and BROM certificates' model),
//     attestation-report-parsed, -signature-verified, -nonce-match (null when
//     no report data was expected), -cert-chain {x-nvidia-cert-status
//     valid|invalid|expired|revoked, x-nvidia-cert-ocsp-status
//     good|revoked|unknown|not-checked, x-nvidia-cert-expiration-date,
//     x-nvidia-cert-revocation-reason}, -cert-chain-fwid-match;
//     driver-version and vbios-version (upper case) for GPUs, bios-version
//     for switches; the RIM claims (driver-rim-*, vbios-rim-*, bios-rim-*,
//     vbios-index-no-conflict; null without an appraiser); measres
//     ("success", "fail" or "not-checked"; ClaimMeasresReason tells a
//     comparison that found differences from measurements that were not
//     compared at all), secboot/dbgstat (only with
//     measres success), hwmodel, ueid, oemid, eat_nonce,
//     x-nvidia-attestation-warning, x-nvidia-device-type, and the PPCIE
//     topology claims x-nvidia-gpu-switch-pdis / x-nvidia-switch-pdi /
//     x-nvidia-switch-gpu-pdis.
//   - Sigil diagnostics: ClaimErrors, ClaimFWID, ClaimNonce,
//     ClaimMeasresReason and ClaimOCSPDetail (inside the cert-chain object).
//
// No "report_data" claim is emitted (Trustee's NVIDIA claims have none; the
// CPU result carries it).
package nvidia
