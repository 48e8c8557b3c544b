// Package rim fetches, verifies and compares NVIDIA reference integrity
// manifests (RIMs): ISO/IEC 19770-2 SWID tags with the TCG RIM information
// model, signed with an enveloped XML signature.
//
// Verification uses only the standard library. The package carries its own
// Canonical XML 1.1 (inclusive, without comments) implementation over a
// minimal DOM built with encoding/xml's RawToken, and accepts exactly the
// profile NVIDIA uses: one ds:Signature child of the document element,
// Reference URI="", transforms enveloped-signature then C14N 1.1, SHA-384
// digest, C14N 1.1 SignedInfo canonicalization and ECDSA-SHA384 with a raw
// 96-byte r||s SignatureValue. DTDs, comments, processing instructions
// (other than the XML declaration), xml:base, non-UTF-8 encodings and
// documents beyond fixed size/depth/token limits are rejected. The signer
// chain (KeyInfo/X509Data, leaf first) must reach a pinned root — by default
// the embedded "NVIDIA CoRIM signing Root CA", pinned by SHA-256 — at a
// verification time the caller passes per check (RIM signers expire after
// about two years and sample RIMs have non-overlapping windows).
//
// Known limitation: encoding/xml does not apply XML attribute-value
// normalization (literal tab/newline in attribute values become spaces per
// XML 1.0), so a document relying on it would canonicalize differently from
// a conforming processor; NVIDIA's RIMs contain no such values.
//
// Typical use:
//
//	client, _ := rim.NewClient(rim.ClientOptions{})
//	verifier, _ := rim.NewVerifier(rim.VerifierOptions{})
//	id, _ := rim.VBIOSID(project, projectSKU, chipSKU, vbiosVersion)
//	doc, _ := client.Fetch(ctx, id)
//	vbios, chain, err := verifier.Verify(doc.XML, now)
//	// ... same for the driver RIM, then:
//	cmp, err := rim.Compare(driver, vbios, blocks, rim.CompareOptions{NVDEC0Status: &nvdec0})
//
// The signer chain's revocation status is checked separately with the
// sibling ocsp package (RIM chains: every certificate but the root).
package rim
