# Sigil default appraisal policy for the "gpu" class (stored as default_gpu).
#
# NVIDIA GPUs are appraised from the NRAS ("Remote" verifier) claims under
# input.nvidia; the "Local" verifier does not emit these claims, so a GPU
# verified locally stays contraindicated unless a custom policy compares its
# measurements with reference values.
#
# Difference from Trustee: Trustee's default GPU policy checks the sample
# device against data.reference.device_svn, a document the attestation
# service never populates, so the sample device is always contraindicated
# there. Here the sample device is checked against the RVPS reference value
# "device_svn" (query_reference_value), which is what Trustee's own
# integration tests register.
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
# NVIDIA GPU appraised by NRAS

gpu := input.nvidia

# A certificate chain that NRAS found valid and not revoked.
chain_good(chain) if {
	chain["x-nvidia-cert-status"] == "valid"
	chain["x-nvidia-cert-ocsp-status"] == "good"
}

# Genuine hardware: the attestation report is signed by a valid device
# certificate chain whose FWID matches, and the architecture is as expected.
hardware := 2 if {
	chain_good(gpu["x-nvidia-gpu-attestation-report-cert-chain"])
	gpu["x-nvidia-gpu-attestation-report-cert-chain-fwid-match"]
	gpu["x-nvidia-gpu-attestation-report-parsed"]
	gpu["x-nvidia-gpu-attestation-report-signature-verified"]
	gpu["x-nvidia-gpu-arch-check"]
}

gpu_secure_mode if {
	gpu.secboot
	gpu.dbgstat == "disabled"
}

# Approved when the VBIOS and driver versions are registered in the RVPS
# (VBIOS versions in upper case, as NRAS reports them); otherwise secure
# boot with debugging disabled still shows no known weakness.
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
		gpu[sprintf("x-nvidia-gpu-%s-rim-%s", [kind, step])]
	}
}

# Approved firmware and driver: both RIMs processed, the VBIOS RIM signer
# chain valid, and the measurements compared successfully. (The driver RIM
# signer chain is not checked, as in Trustee.)
executables := 3 if {
	chain_good(gpu["x-nvidia-gpu-vbios-rim-cert-chain"])
	rim_ok("driver")
	rim_ok("vbios")
	gpu.measres == "success"
}
