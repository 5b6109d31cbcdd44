# features.awk: the Unix baseline's group-by. Input: the data rows of one
# invoice file (invoice_id,issuer,receiver,issued_at,amount,currency,description),
# sorted by issuer, so that each issuer's rows are consecutive and only one
# issuer is held at a time. The description is the last column, so a quoted
# comma inside it does not move the fields read here. Set `file` with -v.
#
# Output, one line per issuer:
#   file,user,invoice_count,amount_total,amount_min,amount_max,
#   distinct_receivers,first_issued,last_issued,top_receiver,top_receiver_amount
# with amounts in integer cents (summed exactly: doubles hold integers up to
# 2^53) and the top receiver's ties going to the smallest name (byte order
# under LC_ALL=C).
BEGIN { FS = "," }

function flush(    r, d, top, topc, any) {
	if (n == 0)
		return
	d = 0; any = 0
	for (r in rc) {
		d++
		if (!any || rc[r] > topc || (rc[r] == topc && r < top)) {
			top = r; topc = rc[r]; any = 1
		}
	}
	printf "%s,%s,%d,%.0f,%.0f,%.0f,%d,%s,%s,%s,%.0f\n", file, user, n, sum, mn, mx, d, fi, la, top, topc
	split("", rc)
	n = 0; sum = 0
}

$2 != user { flush(); user = $2 }

{
	c = $5 * 100
	c = (c < 0) ? int(c - 0.5) : int(c + 0.5)
	n++
	sum += c
	if (n == 1 || c < mn) mn = c
	if (n == 1 || c > mx) mx = c
	if (n == 1 || $4 < fi) fi = $4
	if (n == 1 || $4 > la) la = $4
	rc[$3] += c
}

END { flush() }
