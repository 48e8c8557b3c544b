package rim

import (
	"errors"
	"testing"
)

func TestIDs(t *testing.T) {
	tests := []struct {
		name string
		got  func() (string, error)
		want string
	}{
		{"hopper driver", func() (string, error) { return HopperDriverID("550.90.07\x00\x00") }, "NV_GPU_DRIVER_GH100_550.90.07"},
		{"blackwell driver", func() (string, error) { return BlackwellDriverID("gb100", "575.32") }, "NV_GPU_CC_DRIVER_GB100_575.32"},
		{"blackwell default chip", func() (string, error) { return BlackwellDriverID("", "575.32") }, "NV_GPU_CC_DRIVER_GB100_575.32"},
		{"vbios", func() (string, error) { return VBIOSID("1010", "0200", "882", "96.00.9f.00.01") }, "NV_GPU_VBIOS_1010_0200_882_96009F0001"},
		{"vbios g520 lower", func() (string, error) { return VBIOSID("g520\x00", "0200", "885", "96.00.74.00.01") }, "NV_GPU_VBIOS_G520_0200_885_9600740001"},
		{"switch", func() (string, error) { return SwitchBIOSID("96.10.55.00.01") }, "NV_SWITCH_BIOS_5612_0002_890_9610550001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.got()
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []func() (string, error){
		func() (string, error) { return HopperDriverID("") },
		func() (string, error) { return HopperDriverID("../x") },
		func() (string, error) { return VBIOSID("1010", "0200", "", "96.00") },
		func() (string, error) { return SwitchBIOSID("9 6") },
		func() (string, error) { return BlackwellDriverID("gb/100", "1") },
	} {
		if _, err := bad(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("got %v", err)
		}
	}
}
