# Sigil default appraisal policy for the "gpu" class (stored as default_gpu).
#
# NVIDIA GPUs are appraised from the claims under input.nvidia. Both NVIDIA
# verifiers emit the same NRAS v3 claim names: the "Remote" verifier copies
# the NRAS device token, and Sigil's "Local" verifier computes the same
# claims itself (Trustee's local verifier does not, so there a locally
# verified GPU is always contraindicated; here it is appraised like an NRAS
# one).
#
# Trust vector, as Trustee's default GPU policy gives it for NRAS claims:
#   hardware      2  genuine: report parsed and signed by a valid, not
#                    revoked (OCSP "good") device chain whose FWID matches,
#                    architecture as expected;            otherwise 97
#   configuration 2  secure boot, debug disabled, and the VBIOS and driver
#                    versions are in the reference values
#                    allowed_vbios_versions (upper case, as NRAS reports
#                    them) and allowed_driver_versions;
#                 3  secure boot and debug disabled only; otherwise 36
#   executables   3  driver and VBIOS RIMs fetched and verified, the VBIOS
#                    RIM signer chain valid and not revoked, and every
#                    measurement matched (measres "success"); otherwise 33
#
# Decisions (differences from Trustee's text; the outcomes on NRAS claims
# are the same):
# - A nonce mismatch makes hardware 97. NRAS claims always carry true
#   (Trustee's verifier refuses the token otherwise); Sigil's local verifier
#   records a mismatch in the claims when it is not in strict mode.
# - Revocation must have been checked: the local verifier without an OCSP
#   checker reports x-nvidia-cert-ocsp-status "not-checked", which does not
#   count as genuine hardware (hardware 97, contraindicated). Deployments
#   that cannot reach NVIDIA's OCSP service and accept that risk need a
#   custom policy.
# - Boolean claims must be true. Trustee tests them for truthiness, so a
#   null claim (NRAS v3 sends null for what it did not compute) passes
#   there; here it does not.
# - The driver RIM signer chain is not checked, as in Trustee (the local
#   verifier still reports it).
# - Trustee's test rule for the sample device reads data.reference.device_svn,
#   a document the attestation service never populates, so the sample device
#   is always contraindicated there. Here it is checked against the RVPS
#   reference value "device_svn" (query_reference_value), which is what
#   Trustee's own integration tests register.
package policy

import rego.v1

default executables := 33

default hardware := 97

default configuration := 36

default instance_identity := 0

default file_system := 0

default runtime_opaque := 0

default storage_opaque := 0

default sourced_data := 0

trust_claims := {
	"instance-identity": instance_identity,
	"configuration": configuration,
	"executables": executables,
	"file-system": file_system,
	"hardware": hardware,
	"runtime-opaque": runtime_opaque,
	"storage-opaque": storage_opaque,
	"sourced-data": sourced_data,
}

# ---------------------------------------------------------------------------
# sample device (test-only)

hardware := 2 if {
	input.sampledevice.svn in query_reference_value("device_svn")
}

# ---------------------------------------------------------------------------
# NVIDIA GPU (NRAS or local claims)

gpu := input.nvidia

# A certificate chain found valid and not revoked.
chain_good(chain) if {
	chain["x-nvidia-cert-status"] == "valid"
	chain["x-nvidia-cert-ocsp-status"] == "good"
}

# Genuine hardware: the attestation report is signed by a valid device
# certificate chain whose FWID matches, it answers our nonce, and the
# architecture is as expected.
hardware := 2 if {
	chain_good(gpu["x-nvidia-gpu-attestation-report-cert-chain"])
	gpu["x-nvidia-gpu-attestation-report-cert-chain-fwid-match"] == true
	gpu["x-nvidia-gpu-attestation-report-parsed"] == true
	gpu["x-nvidia-gpu-attestation-report-signature-verified"] == true
	gpu["x-nvidia-gpu-arch-check"] == true
	not gpu["x-nvidia-gpu-attestation-report-nonce-match"] == false
}

gpu_secure_mode if {
	gpu.secboot == true
	gpu.dbgstat == "disabled"
}

# Approved when the VBIOS and driver versions are registered in the RVPS;
# otherwise secure boot with debugging disabled still shows no known
# weakness.
configuration := 2 if {
	gpu_secure_mode
	gpu["x-nvidia-gpu-vbios-version"] in query_reference_value("allowed_vbios_versions")
	gpu["x-nvidia-gpu-driver-version"] in query_reference_value("allowed_driver_versions")
} else := 3 if {
	gpu_secure_mode
}

rim_steps := ["fetched", "measurements-available", "schema-validated", "signature-verified", "version-match"]

# Every step of a reference integrity manifest's processing succeeded.
rim_ok(kind) if {
	every step in rim_steps {
		gpu[sprintf("x-nvidia-gpu-%s-rim-%s", [kind, step])] == true
	}
}

# Approved firmware and driver: both RIMs processed, the VBIOS RIM signer
# chain valid, and the measurements compared successfully.
executables := 3 if {
	chain_good(gpu["x-nvidia-gpu-vbios-rim-cert-chain"])
	rim_ok("driver")
	rim_ok("vbios")
	gpu.measres == "success"
}
