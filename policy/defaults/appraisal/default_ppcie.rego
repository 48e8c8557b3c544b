# Sigil default appraisal policy for the "ppcie" class (stored as
# default_ppcie): the Protected PCIe topology of 8 NVIDIA GPUs and 4
# NVSwitches, described by one extra result the NVIDIA verifier adds when
# the devices form a PPCIe set. Each GPU and switch is appraised by its own
# submod (default_gpu, default_switch); this one only says whether the
# topology is sound.
#
#   configuration 2  the topology validated: x-nvidia-ppcie-topology-check
#                    is true (8 GPUs and 4 switches, all genuine and
#                    distinct, in PPCIE mode, with consistent PDIs);
#                 96 the topology check failed (unsupportable
#                    configuration: contraindicated);
#                 36 no topology claims at all.
#   everything else 0.
#
# Trustee adds its ppcie submod only when the topology validated, with the
# claims {"gpu_count": 8, "switch_count": 4} and no check claim, and its
# policy always gives configuration 2. Such claims give 2 here too; Sigil's
# verifier also reports a failed topology, which Trustee silently drops.
package policy

import rego.v1

default executables := 0

default hardware := 0

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

ppcie := input.nvidia

check := "x-nvidia-ppcie-topology-check"

topology_valid if ppcie[check] == true

# Trustee-shaped claims: the submod exists only for a valid topology.
topology_valid if {
	not check in object.keys(ppcie)
	ppcie.gpu_count == 8
	ppcie.switch_count == 4
}

configuration := 2 if {
	topology_valid
} else := 96 if {
	ppcie[check] == false
}
