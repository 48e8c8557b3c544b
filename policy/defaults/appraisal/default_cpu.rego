# Sigil default appraisal policy for the "cpu" class (stored as default_cpu).
#
# Input: the transformed verifier claims, one TEE per evaluation, under the
# TEE name (input.sample, input.tdx, input.snp, input["az-snp-vtpm"], ...),
# plus the hoisted report_data / runtime_data_claims / init_data /
# init_data_claims. Reference values come from the RVPS through
# query_reference_value(id), which yields null for an unknown id.
#
# Output: trust_claims (an AR4SI trustworthiness vector) and the
# ear.trustee.identifiers extension. Claim values used below:
#   executables   3 approved boot, 4 approved runtime, 33 unrecognized runtime
#   hardware      2 genuine, 97 unrecognized
#   configuration 2 approved, 3 no known vulnerabilities, 36 unavailable
#   0 means "no claim". Any value >= 96 makes the appraisal contraindicated,
#   32..95 a warning.
#
# The reference-value ids and outcomes follow Trustee's default CPU policy,
# so existing RVPS contents keep working.
package policy

import rego.v1

# Nothing is trusted until a TEE section below says otherwise.
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
# sample (test-only TEE; its claims are fixed by the verifier)

executables := 3 if {
	input.sample
	input.sample.launch_digest in query_reference_value("launch_digest")
}

hardware := 2 if {
	input.sample
	input.sample.svn in query_reference_value("svn")
	input.sample.platform_version.major == query_reference_value("major_version")
	input.sample.platform_version.minor >= query_reference_value("minimum_minor_version")
}

configuration := 2 if {
	input.sample
	input.sample.debug == false
}

# ---------------------------------------------------------------------------
# AMD SEV-SNP
#
# Two claim layouts exist: a flat one (input.snp.measurement,
# input.snp.reported_tcb_bootloader, input.snp.policy_debug_allowed, ...) and
# a nested one under input.snp.evidence (evidence.reported_tcb.bootloader,
# evidence.policy.debug_allowed, evidence.plat_info.smt_enabled, ...).
# snp_claim maps either onto the flat names; a field missing from the
# evidence stays undefined, so a check on it fails.

snp_nested_paths := {
	"measurement": ["measurement"],
	"reported_tcb_bootloader": ["reported_tcb", "bootloader"],
	"reported_tcb_microcode": ["reported_tcb", "microcode"],
	"reported_tcb_snp": ["reported_tcb", "snp"],
	"reported_tcb_tee": ["reported_tcb", "tee"],
	"policy_debug_allowed": ["policy", "debug_allowed"],
	"policy_migrate_ma": ["policy", "migrate_ma_allowed"],
	"policy_abi_major": ["policy", "abi_major"],
	"policy_abi_minor": ["policy", "abi_minor"],
	"policy_single_socket": ["policy", "single_socket_required"],
	"policy_smt_allowed": ["policy", "smt_allowed"],
	"platform_smt_enabled": ["plat_info", "smt_enabled"],
	"platform_tsme_enabled": ["plat_info", "tsme_enabled"],
}

snp_missing := {"sigil.missing": true}

snp_claim[name] := value if {
	not input.snp.evidence
	some name, _ in snp_nested_paths
	value := input.snp[name]
}

snp_claim[name] := value if {
	some name, path in snp_nested_paths
	value := object.get(input.snp.evidence, path, snp_missing)
	value != snp_missing
}

executables := 3 if {
	input.snp
	snp_claim.measurement in query_reference_value("snp_launch_measurement")
}

hardware := 2 if {
	input.snp
	snp_claim.reported_tcb_bootloader in query_reference_value("snp_bootloader")
	snp_claim.reported_tcb_microcode in query_reference_value("snp_microcode")
	snp_claim.reported_tcb_snp in query_reference_value("snp_snp_svn")
	snp_claim.reported_tcb_tee in query_reference_value("snp_tee_svn")
}

# Fully approved: no debug, no migration agent, and the platform and guest
# policy bits equal the registered reference values.
configuration := 2 if {
	snp_locked_down
	snp_claim.platform_smt_enabled == query_reference_value("snp_smt_enabled")
	snp_claim.platform_tsme_enabled == query_reference_value("snp_tsme_enabled")
	snp_claim.policy_abi_major == query_reference_value("snp_guest_abi_major")
	snp_claim.policy_abi_minor == query_reference_value("snp_guest_abi_minor")
	snp_claim.policy_single_socket == query_reference_value("snp_single_socket")
	snp_claim.policy_smt_allowed == query_reference_value("snp_smt_allowed")
} else := 3 if {
	# Without matching reference values, a guest that cannot be debugged or
	# migrated still has no known configuration weakness.
	snp_locked_down
}

snp_locked_down if {
	input.snp
	snp_claim.policy_debug_allowed == false
	snp_claim.policy_migrate_ma == false
}

# ---------------------------------------------------------------------------
# Intel TDX

tdx_rtmrs_match if {
	input.tdx.quote.body.rtmr_1 in query_reference_value("rtmr_1")
	input.tdx.quote.body.rtmr_2 in query_reference_value("rtmr_2")
}

# The firmware event log records the direct-boot kernel and its command line.
tdx_kernel_logged if {
	some event in input.tdx.uefi_event_logs
	event.type_name == "EV_EFI_BOOT_SERVICES_APPLICATION"
	"File(kernel)" in event.details.device_paths
	some d in event.digests
	d.digest == query_reference_value("tdvfkernel")
}

tdx_kernel_params_logged if {
	some event in input.tdx.uefi_event_logs
	event.type_name == "EV_EVENT_TAG"
	event.details.string == "LOADED_IMAGE::LoadOptions"
	some d in event.digests
	d.digest == query_reference_value("tdvfkernelparams")
}

executables := 3 if {
	input.tdx
	tdx_rtmrs_match
	tdx_kernel_logged
	tdx_kernel_params_logged
} else := 4 if {
	# Boot through a bootloader (e.g. GRUB on GKE): the kernel is not in the
	# firmware log, only the RTMRs can be checked.
	input.tdx
	tdx_rtmrs_match
}

# A genuine TDX quote (TDX TEE type, Intel QE vendor id) with an approved
# TD firmware, an up-to-date TCB and unexpired collateral. The TCB status
# already covers the TDX module SVN.
hardware := 2 if {
	input.tdx
	tdx_genuine_quote(input.tdx.quote)
	input.tdx.quote.body.mr_td in query_reference_value("mr_td")
	input.tdx.tcb_status == "UpToDate"
	input.tdx.collateral_expiration_status == "0"
}

configuration := 2 if {
	input.tdx
	input.tdx.td_attributes.debug == false
	input.tdx.quote.body.xfam in query_reference_value("xfam")
}

tdx_genuine_quote(quote) if {
	quote.header.tee_type == "81000000"
	quote.header.vendor_id == "939a7233f79c4ca9940a0db3957f0607"
}

# ---------------------------------------------------------------------------
# Azure confidential VM with SEV-SNP and a paravisor vTPM

executables := 3 if {
	azsnp := input["az-snp-vtpm"]
	azsnp.measurement in query_reference_value("measurement")
	azsnp.tpm.pcr11 in query_reference_value("snp_pcr11")
}

hardware := 2 if {
	azsnp := input["az-snp-vtpm"]
	azsnp.reported_tcb_bootloader in query_reference_value("tcb_bootloader")
	azsnp.reported_tcb_microcode in query_reference_value("tcb_microcode")
	azsnp.reported_tcb_snp in query_reference_value("tcb_snp")
	azsnp.reported_tcb_tee in query_reference_value("tcb_tee")
}

configuration := 2 if {
	azsnp := input["az-snp-vtpm"]
	azsnp.platform_smt_enabled in query_reference_value("smt_enabled")
	azsnp.platform_tsme_enabled in query_reference_value("tsme_enabled")
	azsnp.policy_abi_major in query_reference_value("abi_major")
	azsnp.policy_abi_minor in query_reference_value("abi_minor")
	azsnp.policy_single_socket in query_reference_value("single_socket")
	azsnp.policy_smt_allowed in query_reference_value("smt_allowed")
}

# ---------------------------------------------------------------------------
# Azure confidential VM with TDX and a paravisor vTPM

executables := 3 if {
	input["az-tdx-vtpm"].tpm.pcr11 in query_reference_value("tdx_pcr11")
}

hardware := 2 if {
	aztdx := input["az-tdx-vtpm"]
	tdx_genuine_quote(aztdx.quote)
	aztdx.quote.body.mr_td in query_reference_value("mr_td")
	aztdx.tcb_status == "UpToDate"
}

configuration := 2 if {
	input["az-tdx-vtpm"].quote.body.xfam in query_reference_value("xfam")
}

# ---------------------------------------------------------------------------
# Plain TPM: the verifier has checked the quote; the policy pins the boot
# (PCR 11) and the attestation key.

hardware := 2 if input.tpm

executables := 3 if {
	input.tpm.pcr11 in query_reference_value("tpm_pcr11")
	input.tpm.ak_public in query_reference_value("trusted_aks")
}

configuration := 0 if input.tpm

# ---------------------------------------------------------------------------
# IBM Secure Execution: the verifier checks measurements, signatures and the
# user-data binding itself, so a present claim set is fully trusted.

executables := 3 if input.se

hardware := 2 if input.se

configuration := 2 if input.se

# ---------------------------------------------------------------------------
# Extension ear.trustee.identifiers (EAR key -18): workload identifiers that
# the init-data agent policy binds to the measured TEE.

extensions := [{
	"name": "ear.trustee.identifiers",
	"key": -18,
	"value": {"validated": validated_identifiers},
}]

agent_containers := input.init_data_claims.agent_policy_claims.containers

identifier_lists := {
	"container_images": [image |
		some c in agent_containers
		image := c.OCI.Annotations["io.kubernetes.cri.image-name"]
	],
	"container_uids": [uid |
		some c in agent_containers
		uid := c.OCI.Process.User.UID
	],
}

# Only non-empty lists are reported.
validated_identifiers[name] := values if {
	some name, values in identifier_lists
	count(values) > 0
}
