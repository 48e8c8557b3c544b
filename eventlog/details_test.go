package eventlog

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestDevicePathNodes(t *testing.T) {
	cases := []struct {
		typ, sub byte
		data     string
		want     string
	}{
		{1, 1, "0001", "Pci(0,1)"},
		{1, 1, "00", "Path(1,1,00)"},
		{1, 4, "0000", "Path(1,4,0000)"},
		{2, 1, "d041030a00000000", "ACPI(PNP0A03,0)"},
		{2, 1, "d041030a02000000", "ACPI(PNP0A03,2)"},
		{2, 1, "d041030a", "Path(2,1,d041030a)"},
		{2, 3, "0000", "Path(2,3,0000)"},
		{3, 5, "0000", "USB(0,0)"},
		{3, 11, "001320f5fa77000000000000000000000000000000000000000000000000000001", "Mac(001320F5FA77,0x01)"},
		{3, 12, "0100A8C06400A8C00000BC0C0600010000000000000000", "IPv4(192.168.0.100,TCP,Static,192.168.0.1)"},
		{3, 12, "0100A8C06400A8C00000BC0C1100000100A8C000FFFFFF", "IPv4(192.168.0.100,UDP,DHCP,192.168.0.1,3232235521,4294967040)"},
		{3, 21, "00010203040506070001020304050607", "FibreEx(0x0001020304050607,0x0001020304050607)"},
		{3, 23, "010000000000000000000000", "Path(3,23,010000000000000000000000)"},
		{4, 1, "0f000000002800000000000000500300000000005e27f1007553d5439eb5de2add4c99320202", "HD(15,GPT,00F1275E-5375-43D5-9EB5-DE2ADD4C9932,0x2800,0x35000)"},
		{4, 1, "00000000000000000000000000000000000000000000000000000000431202a0000000000101", "HD(0,MBR,0x00000000)"},
		{4, 1, "01000000000800000000000000E02E0000000000431202a000000000431202a0000000000101", "HD(1,MBR,0xa0021243,0x800,0x2ee000)"},
		{4, 1, "01000000000800000000000000E02E0000000000431202a000000000431202a0000000000301", "Path(4,1,01000000000800000000000000e02e0000000000431202a000000000431202a0000000000301)"},
		{4, 3, "f8d1c555cd04b5468a20e56cbb3052d0", "VenMedia(55C5D1F8-04CD-46B5-8A20-E56CBB3052D0,)"},
		{4, 3, "72f728144ab61e44b8c39ebdd7f893c7abcd", "VenMedia(1428F772-B64A-441E-B8C3-9EBDD7F893C7,abcd)"},
		{4, 4, "6b00650072006e0065006c000000", "File(kernel)"},
		{4, 4, "5c004500460049005c0042004f004f0054005c00660062007800360034002e006500660069000000", `File(\EFI\BOOT\fbx64.efi)`},
		{4, 4, "6b0065", "Path(4,4,6b0065)"},
		{4, 2, "0000", "Path(4,2,0000)"},
		{5, 1, "0500000000", "BBS(USB,,0)"},
		{5, 1, "F0FF000000", "BBS(65520,,0)"},
		{5, 1, "8000000041424300", "BBS(DEV,ABC,0)"},
		{0x7f, 0x01, "", "Path(127,1,)"},
	}
	for _, c := range cases {
		data, err := hex.DecodeString(c.data)
		if err != nil {
			t.Fatal(err)
		}
		if got := devicePathNode(c.typ, c.sub, data); got != c.want {
			t.Errorf("node(%d,%d,%s) = %q, want %q", c.typ, c.sub, c.data, got, c.want)
		}
	}
}

func detailsJSON(t *testing.T, d Details) string {
	t.Helper()
	b, err := json.Marshal(d.claims())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeDetails(t *testing.T) {
	cases := []struct {
		name string
		typ  uint32
		data string
		want string // JSON of the details claim; "" = decode error
	}{
		{"image load kernel", EvEFIBootServicesApplication, "1800b37c0000000000a2a5000000000000000000000000002a000000000000000403140072f728144ab61e44b8c39ebdd7f893c7040412006b00650072006e0065006c0000007fff0400",
			`{"device_paths":["VenMedia(1428F772-B64A-441E-B8C3-9EBDD7F893C7,)","File(kernel)"]}`},
		{"image load no path", EvEFIBootServicesApplication, "009d9b7a000000008879e4000000000000000000000000000000000000000000", `{}`},
		{"image load short", EvEFIBootServicesApplication, "009d9b7a", ""},
		{"image load path too long", EvEFIBootServicesApplication, "1800b37c0000000000a2a50000000000000000000000000000ff0000000000000403140072f7", ""},
		{"image load path < 4", EvEFIBootServicesApplication, "1800b37c0000000000a2a500000000000000000000000000030000000000000004031400", ""},
		{"image load node length 0", EvEFIBootServicesApplication, "1800b37c0000000000a2a50000000000000000000000000008000000000000000403000000000000", ""},
		{"image load node past end", EvEFIBootServicesApplication, "1800b37c0000000000a2a50000000000000000000000000008000000000000000403ff0000000000", ""},
		{"variable", EvEFIVariableBoot, "61dfe48bca93d211aa0d00e098032b8c0900000000000000020000000000000042006f006f0074004f0072006400650072000000",
			`{"unicode_name":"BootOrder","unicode_name_length":9,"variable_data":"AAA=","variable_data_length":2,"variable_name":"61dfe48b-ca93-d211-aa0d-00e098032b8c"}`},
		{"variable authority", EvEFIVariableAuthority, "50ab5d6046e00043abb63dd810dd8b2309000000000000002e0000000000000053006200610074004c006500760065006c00736261742c312c323032333031323930300a7368696d2c320a677275622c330a677275622e64656269616e2c340a",
			`{"unicode_name":"SbatLevel","unicode_name_length":9,"variable_data":"c2JhdCwxLDIwMjMwMTI5MDAKc2hpbSwyCmdydWIsMwpncnViLmRlYmlhbiw0Cg==","variable_data_length":46,"variable_name":"50ab5d60-46e0-0043-abb6-3dd810dd8b23"}`},
		{"variable no name", EvEFIVariableDriverConfig, "61dfe48bca93d211aa0d00e098032b8c", ""},
		{"variable name past end", EvEFIVariableDriverConfig, "61dfe48bca93d211aa0d00e098032b8c0a000000000000000000000000000000", ""},
		{"variable huge name", EvEFIVariableDriverConfig, "61dfe48bca93d211aa0d00e098032b8cffffffffffffffff0000000000000000", ""},
		{"variable data past end", EvEFIVariableBoot2, "61dfe48bca93d211aa0d00e098032b8c0100000000000000ffffffffffffffff4100", ""},
		{"variable bad UTF-16", EvEFIVariableBoot2, "61dfe48bca93d211aa0d00e098032b8c0100000000000000000000000000000000d8", ""},
		{"event tag", EvEventTag, "ed223b8f1a0000004c4f414445445f494d4147453a3a4c6f61644f7074696f6e7300", `{"string":"LOADED_IMAGE::LoadOptions"}`},
		{"event tag short", EvEventTag, "0F", ""},
		{"event tag size past end", EvEventTag, "0F74645f7061796c6f61640000109000000000000000001000000000", ""},
		{"AAEL text", EvEventTag, hex.EncodeToString([]byte("LEAA\x24\x00\x00\x00coco.com some-operation some-content")),
			`{"data":{"content":"some-content","domain":"coco.com","operation":"some-operation"},"string":"coco.com some-operation some-content","unicode_name":"AAEL"}`},
		{"AAEL number", EvEventTag, hex.EncodeToString([]byte("LEAA\x19\x00\x00\x00d op 12345678901234567890")),
			`{"data":{"content":12345678901234567890,"domain":"d","operation":"op"},"string":"d op 12345678901234567890","unicode_name":"AAEL"}`},
		{"AAEL content with spaces", EvEventTag, hex.EncodeToString([]byte("LEAA\x0b\x00\x00\x00d op a b {c")),
			`{"data":{"content":"a b {c","domain":"d","operation":"op"},"string":"d op a b {c","unicode_name":"AAEL"}`},
		{"AAEL without content", EvEventTag, hex.EncodeToString([]byte("LEAA\x04\x00\x00\x00d op")), ""},
		{"IPL", EvIPL, "4d6f6b4c6973745472757374656400", `{"string":"MokListTrusted"}`},
		{"IPL stray byte", EvIPL, hex.EncodeToString([]byte("grub_cmd blscfg\x00\x8b")), `{"string":"grub_cmd blscfg"}`},
		{"IPL GCE", EvIPL, "2e0063006d0064006c0069006e0065000000", `{"string":"cmdline"}`},
		{"IPL GCE odd", EvIPL, "2e0000", ""},
		{"IPL GCE empty", EvIPL, "2e00", ""},
		{"IPL short", EvIPL, "4d", ""},
		{"IPL not UTF-8", EvIPL, "ff4d", ""},
		{"handoff tables", EvEFIHandoffTables2, "095464785461626c65000100000000000000af96bb93f2b9b84e9462e0ba745642360090800000000000", `{"string":"TdxTable"}`},
		{"blob2", EvEFIPlatformFirmwareBlob2, "0b74645f7061796c6f61640000109000000000000000001000000000", `{"string":"td_payload"}`},
		{"blob2 empty", EvEFIPlatformFirmwareBlob2, "", ""},
		{"blob2 zero size", EvEFIPlatformFirmwareBlob2, "00", ""},
		{"blob2 too short", EvEFIPlatformFirmwareBlob2, "0F", ""},
		{"blob2 not UTF-8", EvEFIPlatformFirmwareBlob2, "0F74645f7061796c6f61640000109000000000000000001000000000", ""},
		{"config flags", EvPlatformConfigFlags, hex.EncodeToString([]byte("td_payload_info\x00\x00\x10\x00\x00root=/dev/vda1\x00\x7f")), `{"string":"td_payload_info root=/dev/vda1"}`},
		{"config flags binary", EvPlatformConfigFlags, "74645f686f6200ff", `{"string":""}`},
		{"EFI action", EvEFIAction, hex.EncodeToString([]byte("Exit Boot Services Invocation")), `{"string":"Exit Boot Services Invocation"}`},
		{"EFI action not UTF-8", EvEFIAction, "ff", ""},
		{"post code", EvPostCode, "", `{"string":""}`},
		{"separator", EvSeparator, "00000000", `{}`},
		{"no action", EvNoAction, "00ff", `{}`},
		{"unknown type", 0x12345678, "00ff", `{}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := hex.DecodeString(c.data)
			if err != nil {
				t.Fatal(err)
			}
			d, err := decodeDetails(c.typ, data)
			if c.want == "" {
				if !errors.Is(err, errDetails) {
					t.Fatalf("err = %v, details %s; want a decode error", err, detailsJSON(t, d))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal([]byte(detailsJSON(t, d)), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(c.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("details = %s, want %s", detailsJSON(t, d), c.want)
			}
		})
	}
}

func TestAAELContentTypes(t *testing.T) {
	e, err := parseAAEL(`coco.com op {"n": 12345678901234567890}`)
	if err != nil {
		t.Fatal(err)
	}
	n := e.Content.(map[string]any)["n"]
	if n != json.Number("12345678901234567890") {
		t.Errorf("content number = %#v, want exact json.Number", n)
	}
}

func TestEventTypeName(t *testing.T) {
	for typ, want := range map[uint32]string{
		EvEventTag:                   "EV_EVENT_TAG",
		EvEFIBootServicesApplication: "EV_EFI_BOOT_SERVICES_APPLICATION",
		0x800000E0:                   "EV_EFI_VARIABLE_AUTHORITY",
		0x7:                          "EV_S_CRTM_CONTENTS",
		0x13:                         "EV_UNKNOWN_0x00000013",
	} {
		if got := EventTypeName(typ); got != want {
			t.Errorf("EventTypeName(%#x) = %q, want %q", typ, got, want)
		}
	}
}

func TestAlgString(t *testing.T) {
	for a, want := range map[Alg]string{AlgSHA1: "SHA-1", AlgSHA256: "SHA-256", AlgSHA384: "SHA-384", AlgSHA512: "SHA-512", AlgSM3: "SM3", 0x27: "0x0027"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", uint16(a), a.String(), want)
		}
	}
}

// TestSM3 uses the GB/T 32905 examples and digests from Trustee's Hygon CSV
// log golden (SM3 of an EV_SEPARATOR's 00000000 and of an EV_EFI_ACTION
// string).
func TestSM3(t *testing.T) {
	cases := map[string]string{
		"abc": "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
		"abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd": "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732",
		"\x00\x00\x00\x00":                         "afcc870fa20c507995499794371e8c25e3a7310fa72200c109379973ae236845",
		"Calling EFI Application from Boot Option": "0c45a5c3c304d73f1a9d73d4fe03190cf1861e89ba5b958752aba51c6fb5fc5a",
	}
	for in, want := range cases {
		got := sm3Sum([]byte(in))
		if hex.EncodeToString(got[:]) != want {
			t.Errorf("SM3(%q) = %x, want %s", in, got, want)
		}
	}
}
