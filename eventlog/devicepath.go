package eventlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// devicePathNode renders one UEFI device path node in the text form Trustee
// uses. Nodes it does not decode (or cannot, because their data is too
// short) are printed as Path(type,subtype,hexdata).
func devicePathNode(typ, sub byte, data []byte) string {
	if s, ok := knownNode(typ, sub, data); ok {
		return s
	}
	return fmt.Sprintf("Path(%d,%d,%s)", typ, sub, hex.EncodeToString(data))
}

func knownNode(typ, sub byte, data []byte) (string, bool) {
	switch {
	case typ == 0x01 && sub == 0x01: // Hardware: PCI
		if len(data) < 2 {
			return "", false
		}
		return fmt.Sprintf("Pci(%d,%d)", data[0], data[1]), true
	case typ == 0x02 && sub == 0x01: // ACPI
		return acpiNode(data)
	case typ == 0x03:
		return messagingNode(sub, data)
	case typ == 0x04:
		return mediaNode(sub, data)
	case typ == 0x05 && sub == 0x01: // BIOS Boot Specification
		return bbsNode(data)
	}
	return "", false
}

func acpiNode(data []byte) (string, bool) {
	if len(data) < 8 {
		return "", false
	}
	hid := binary.LittleEndian.Uint32(data)
	uid := binary.LittleEndian.Uint32(data[4:])
	// The low 16 bits are a compressed EISA vendor ID: three 5-bit letters.
	v := hid & 0xFFFF
	name := string([]byte{byte((v>>10)&0x1F) + '@', byte((v>>5)&0x1F) + '@', byte(v&0x1F) + '@'})
	return fmt.Sprintf("ACPI(%s%04X,%d)", name, hid>>16, uid), true
}

func messagingNode(sub byte, data []byte) (string, bool) {
	switch sub {
	case 0x05: // USB
		if len(data) < 2 {
			return "", false
		}
		return fmt.Sprintf("USB(%d,%d)", data[0], data[1]), true
	case 0x0B: // MAC address
		if len(data) != 33 {
			return "", false
		}
		mac := strings.ToUpper(strings.TrimRight(hex.EncodeToString(data[:31]), "0"))
		return fmt.Sprintf("Mac(%s,0x%02x)", mac, data[32]), true
	case 0x0C: // IPv4
		if len(data) < 23 {
			return "", false
		}
		ip := func(b []byte) string { // Trustee prints the little-endian value
			return fmt.Sprintf("%d.%d.%d.%d", b[3], b[2], b[1], b[0])
		}
		local, remote := ip(data[0:4]), ip(data[4:8])
		var proto string
		switch binary.LittleEndian.Uint16(data[12:]) {
		case 6:
			proto = "TCP"
		case 17:
			proto = "UDP"
		}
		var origin string
		switch data[14] {
		case 0:
			origin = "DHCP"
		case 1:
			origin = "Static"
		}
		gw := binary.LittleEndian.Uint32(data[15:])
		mask := binary.LittleEndian.Uint32(data[19:])
		extra := ""
		if gw != 0 || mask != 0 {
			extra = fmt.Sprintf(",%d,%d", gw, mask)
		}
		return fmt.Sprintf("IPv4(%s,%s,%s,%s%s)", remote, proto, origin, local, extra), true
	case 0x15: // Fibre Channel Ex
		if len(data) < 16 {
			return "", false
		}
		return fmt.Sprintf("FibreEx(0x%x,0x%x)", data[0:8], data[8:16]), true
	}
	return "", false
}

func mediaNode(sub byte, data []byte) (string, bool) {
	switch sub {
	case 0x01: // Hard drive
		if len(data) < 38 {
			return "", false
		}
		num := binary.LittleEndian.Uint32(data)
		start := binary.LittleEndian.Uint64(data[4:])
		size := binary.LittleEndian.Uint64(data[12:])
		sig := data[20:36]
		var format, s string
		switch data[36] {
		case 0x01:
			format, s = "MBR", fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(sig))
		case 0x02:
			format, s = "GPT", uefiGUID(sig)
		default:
			return "", false
		}
		extra := ""
		if num != 0 {
			extra = fmt.Sprintf(",0x%x,0x%x", start, size)
		}
		return fmt.Sprintf("HD(%d,%s,%s%s)", num, format, s, extra), true
	case 0x03: // Vendor-defined media
		if len(data) < 16 {
			return "", false
		}
		return fmt.Sprintf("VenMedia(%s,%s)", uefiGUID(data[:16]), hex.EncodeToString(data[16:])), true
	case 0x04: // File path: UTF-16LE, NUL-terminated
		if len(data) == 0 || len(data)%2 != 0 {
			return "", false
		}
		return "File(" + utf16String(data[:len(data)-2]) + ")", true
	}
	return "", false
}

func bbsNode(data []byte) (string, bool) {
	if len(data) < 4 {
		return "", false
	}
	var dev string
	switch t := binary.LittleEndian.Uint16(data); t {
	case 0x01:
		dev = "FLOPPY"
	case 0x02:
		dev = "HARD_DRIVE"
	case 0x03:
		dev = "CDROM"
	case 0x04:
		dev = "PCMCIA"
	case 0x05:
		dev = "USB"
	case 0x06:
		dev = "EMBEDDED_NETWORK"
	case 0x80:
		dev = "DEV"
	case 0xFF:
		dev = "UNKNOWN"
	default:
		dev = strconv.Itoa(int(t))
	}
	status := binary.LittleEndian.Uint16(data[2:])
	desc := data[4:]
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i]
	}
	if !utf8.Valid(desc) {
		return "", false
	}
	return fmt.Sprintf("BBS(%s,%s,%d)", dev, desc, status), true
}
