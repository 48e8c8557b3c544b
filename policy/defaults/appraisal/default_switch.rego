# Sigil default appraisal policy for the "switch" class (stored as
# default_switch): NVIDIA NVSwitches (LS10), from the NRAS v3 claims under
# input.nvidia that both the Remote (NRAS) and Sigil's Local verifier emit.
#
# Trust vector, as Trustee's default switch policy gives it for NRAS claims:
#   hardware      2  genuine: report parsed and signed by a valid, not
#                    revoked (OCSP "good") device chain, FWID check passed
#                    (switch reports carry no FWID, so it is skipped and
#                    reported as matching), architecture as expected;
#                    otherwise 97
#   configuration 2  secure boot, debug disabled, and the BIOS version is in
#                    the reference value allowed_switch_bios_versions;
#                 3  secure boot and debug disabled only; otherwise 36
#   executables   3  BIOS RIM fetched and verified, its signer chain valid
#                    and not revoked, every measurement matched; otherwise 33
#
# As in default_gpu: boolean claims must be true (null does not pass); a
# nonce mismatch recorded by the local verifier makes
# hardware 97; an OCSP status of "not-checked" (local verifier without an
# OCSP checker) is not genuine hardware; the sample device is checked
# against the RVPS reference value "device_svn" instead of Trustee's
# never-populated data.reference.device_svn.
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
# NVIDIA NVSwitch (NRAS or local claims)

nvswitch := input.nvidia

chain_good(chain) if {
	chain["x-nvidia-cert-status"] == "valid"
	chain["x-nvidia-cert-ocsp-status"] == "good"
}

hardware := 2 if {
	chain_good(nvswitch["x-nvidia-switch-attestation-report-cert-chain"])
	nvswitch["x-nvidia-switch-attestation-report-cert-chain-fwid-match"] == true
	nvswitch["x-nvidia-switch-attestation-report-parsed"] == true
	nvswitch["x-nvidia-switch-attestation-report-signature-verified"] == true
	nvswitch["x-nvidia-switch-arch-check"] == true
	not nvswitch["x-nvidia-switch-attestation-report-nonce-match"] == false
}

switch_secure_mode if {
	nvswitch.secboot == true
	nvswitch.dbgstat == "disabled"
}

configuration := 2 if {
	switch_secure_mode
	nvswitch["x-nvidia-switch-bios-version"] in query_reference_value("allowed_switch_bios_versions")
} else := 3 if {
	switch_secure_mode
}

rim_steps := ["fetched", "measurements-available", "schema-validated", "signature-verified", "version-match"]

executables := 3 if {
	chain_good(nvswitch["x-nvidia-switch-bios-rim-cert-chain"])
	every step in rim_steps {
		nvswitch[sprintf("x-nvidia-switch-bios-rim-%s", [step])] == true
	}
	nvswitch.measres == "success"
}
