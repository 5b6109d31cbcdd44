package feature

import (
	"math"
	"strconv"
)

// AppendFloat appends f as strconv.AppendFloat(dst, f, 'g', -1, 64) does,
// the form of every float in a features file, byte for byte; an amount
// (a decimal of at most four fraction digits below a million, as money
// mostly is) without strconv's search for the shortest digits.
//
// Why that is the same: such an f is the float nearest to n/10⁴ for an
// integer n of at most ten digits (n/1e4 divides exactly representable
// numbers, so it is correctly rounded). Two decimals of at most 15
// significant digits never round to one float64, so no decimal shorter
// than n/10⁴ (its trailing zeros dropped) gives f, and strconv's shortest
// digits are n's. Between 1e-4 and 1e6 'g' writes them without an
// exponent.
func AppendFloat(dst []byte, f float64) []byte {
	if a := math.Abs(f); a >= 1e-4 && a < 1e6 {
		if n := math.Round(f * 1e4); n/1e4 == f {
			return appendDecimal4(dst, int64(n))
		}
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendDecimal4 appends n/10⁴ in decimal, with no trailing zero after
// the point and no point for a whole number.
func appendDecimal4(dst []byte, n int64) []byte {
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	dst = strconv.AppendInt(dst, n/1e4, 10)
	frac := n % 1e4
	if frac == 0 {
		return dst
	}
	digits := [4]byte{byte('0' + frac/1000), byte('0' + frac/100%10), byte('0' + frac/10%10), byte('0' + frac%10)}
	k := 4
	for digits[k-1] == '0' {
		k--
	}
	dst = append(dst, '.')
	return append(dst, digits[:k]...)
}
