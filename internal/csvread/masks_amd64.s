#include "textflag.h"

// func masksAVX2(data *byte, n int, delim byte, out *blockMasks)
// For each of n blocks of 64 bytes: the bytes equal to delim or '\n', to
// '\n', and to '"', as three 64-bit masks (blockMasks).
TEXT ·masksAVX2(SB), NOSPLIT, $0-32
	MOVQ    data+0(FP), SI
	MOVQ    n+8(FP), CX
	MOVBQZX delim+16(FP), AX
	MOVQ    out+24(FP), DI
	MOVQ    AX, X0
	VPBROADCASTB X0, Y0
	MOVQ    $0x0a, AX
	MOVQ    AX, X1
	VPBROADCASTB X1, Y1
	MOVQ    $0x22, AX
	MOVQ    AX, X2
	VPBROADCASTB X2, Y2
	TESTQ   CX, CX
	JZ      done

loop:
	VMOVDQU (SI), Y3
	VMOVDQU 32(SI), Y4
	VPCMPEQB Y0, Y3, Y5
	VPCMPEQB Y0, Y4, Y6
	VPCMPEQB Y1, Y3, Y7
	VPCMPEQB Y1, Y4, Y8
	VPOR    Y5, Y7, Y5
	VPOR    Y6, Y8, Y6
	VPMOVMSKB Y5, AX
	VPMOVMSKB Y6, BX
	SHLQ    $32, BX
	ORQ     BX, AX
	MOVQ    AX, 0(DI)
	VPMOVMSKB Y7, AX
	VPMOVMSKB Y8, BX
	SHLQ    $32, BX
	ORQ     BX, AX
	MOVQ    AX, 8(DI)
	VPCMPEQB Y2, Y3, Y5
	VPCMPEQB Y2, Y4, Y6
	VPMOVMSKB Y5, AX
	VPMOVMSKB Y6, BX
	SHLQ    $32, BX
	ORQ     BX, AX
	MOVQ    AX, 16(DI)
	ADDQ    $64, SI
	ADDQ    $24, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET
