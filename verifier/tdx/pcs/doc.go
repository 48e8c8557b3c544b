// Package pcs fetches, verifies and caches Intel TDX TCB collateral from
// Intel's Provisioning Certification Service (PCS), a PCCS, or an offline
// store, and evaluates a platform's TCB status the way Intel's Quote
// Verification Library (QVL) does for TDX.
//
// # Online API (PCS v4; a PCCS serves the same paths)
//
//	GET {base}/tdx/certification/v4/tcb?fmspc=<HEX>&update=early|standard
//	    body {"tcbInfo":{…},"signature":"<hex r‖s>"}, header TCB-Info-Issuer-Chain
//	GET {base}/tdx/certification/v4/qe/identity?update=early|standard
//	    body {"enclaveIdentity":{…},"signature":…}, header SGX-Enclave-Identity-Issuer-Chain
//	GET {base}/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der
//	GET {base}/sgx/certification/v4/rootcacrl             (PCCS; hex-encoded DER)
//	GET https://certificates.trustedservices.intel.com/IntelSGXRootCA.der (PCS)
//
// Issuer-chain headers are URL-encoded PEM (signing certificate, root). The
// signature is checked over the exact bytes of the tcbInfo/enclaveIdentity
// value in the body, never a re-serialisation. The chain is verified with
// Options.CertNow against the pinned Intel SGX Root CA; the documents'
// issueDate/nextUpdate are checked with Options.Now. Collateral outside its
// window is still evaluated and reported with CollateralExpired, as QVL's
// collateral expiration status does.
//
// CRLs are only used when PlatformTCB.PCKChain is given: the PCK CA CRL
// (ca=platform or processor, from the CA's common name) must be signed by
// PCKChain[1] and must not list the PCK leaf; the Root CA CRL must be signed
// by the trusted root and must not list PCKChain[1] (ErrRevoked otherwise).
// Their numbers and dates feed the supplemental claims.
//
// # Offline directory layout (Options.OfflineDir or BaseURL file://DIR)
//
//	tcbinfo-<FMSPC>.json            PCS TCB Info response body, byte-exact;
//	                                FMSPC in upper or lower case hex
//	tcbinfo-<FMSPC>-early.json      optional; preferred when TCBUpdateType is early
//	qe-identity.json                PCS TD QE identity response body
//	qe-identity-early.json          optional; preferred when TCBUpdateType is early
//	<name>.issuer-chain.pem         issuer chain (PEM, signing cert first) for
//	                                <name>.json; if absent:
//	tcb-signing-chain.pem           shared chain for all documents
//	pckcrl-platform.der, pckcrl-processor.der   PCK CA CRLs (DER, PEM or hex)
//	rootcacrl.der                   Intel SGX Root CA CRL (DER, PEM or hex)
//
// A file:// path that names a regular file is read as the JSON written by
// Intel's PCS client tool ({"collaterals":{"tcbinfos":[…],"tdqeidentity":…,
// "pckcacrl":…,"rootcacrl":…,"certificates":{…}}}), the format Trustee's
// file:// collateral_service uses.
//
// # Caching
//
// Verified documents are cached in memory keyed by (FMSPC, update type) for
// TCB Info and by update type for the QE identity, until nextUpdate (or
// Options.MaxCacheAge). Concurrent misses for one key share one fetch. When a
// refresh fails, the previous document is served (stale-if-error) and the
// result is marked Stale and CollateralExpired with a Reason; refreshes are
// then retried at most every Options.RetryInterval. With nothing cached and
// no source answering, Evaluate returns an error wrapping
// ErrCollateralUnavailable.
//
// # TCB evaluation (QVL semantics)
//
// The platform level is the first tcbLevels entry whose 16 SGX components
// and PCESVN are ≤ the PCK certificate's and whose TDX components are ≤
// tee_tcb_svn; with TCB Info v3 and tee_tcb_svn[1] ≠ 0, bytes 0–1 are skipped
// there and instead tee_tcb_svn[1] selects tdxModuleIdentities "TDX_<NN>"
// whose first level with isvsvn ≤ tee_tcb_svn[0] gives the module status.
// The QE status is the first QE identity level with isvsvn ≤ the QE's ISVSVN
// (Revoked below every level). The overall status combines the three: Revoked
// if any is Revoked; an OutOfDate component makes the result OutOfDate (or
// OutOfDateConfigurationNeeded with a configuration finding); UpToDate only
// if all are UpToDate.
package pcs
