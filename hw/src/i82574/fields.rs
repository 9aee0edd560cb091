//! Bit fields of the 82574L registers, declared once with `fields!`: each register's
//! fields as a module of [`FieldDesc`](crate::regs::FieldDesc) constants (what
//! [`REGISTERS`](super::REGISTERS) refers to and `nicqual regs` decodes), and for the flag
//! registers the `bitflags` types driver and model use ([`Ctrl`], [`Status`], [`CtrlExt`],
//! [`Icr`]). Bit positions as the datasheet (and the Linux e1000e / QEMU e1000e headers)
//! give them; `[hi:lo]` is the datasheet's notation.

use crate::regs::fields;

fields! {
    /// CTRL (and CTRL_DUP).
    pub mod ctrl as flags Ctrl {
        FD [0],
        GIO_MASTER_DISABLE [2],
        LRST [3],
        ASDE [5],
        SLU [6],
        ILOS [7],
        SPD_SEL [9:8],
        FRCSPD [11],
        FRCDPX [12],
        SWDPIN0 [18],
        ADVD3WUC [20],
        RST [26],
        RFCE [27],
        TFCE [28],
        VME [30],
        PHY_RST [31],
    }
}

fields! {
    /// STATUS, read-only.
    pub mod status as flags Status {
        FD [0],
        LU [1],
        FUNC [3:2],
        TXOFF [4],
        SPEED [7:6],
        /// ASDV = 1000 Mb/s; Linux reads it as LAN_INIT_DONE.
        ASDV_1000 [9],
        PHYRA [10],
        GIO_MASTER_ENABLE [19],
    }
}

fields! {
    /// CTRL_EXT.
    pub mod ctrl_ext as flags CtrlExt {
        ASDCHK [12],
        EE_RST [13],
        SPD_BYPS [15],
        RO_DIS [17],
        DMA_DYN_CLK_EN [19],
        TXLSFLOW [22],
        /// Extended Interrupt Auto Mask Enable: a routed MSI-X cause clears its IAM bit.
        EIAME [24],
        /// Interrupt Acknowledge Auto-Mask Enable.
        IAME [27],
        DRV_LOAD [28],
        INT_TIMERS_CLEAR_ENA [29],
        /// MSI-X PBA support: IMS writes clear the PBA bit of the mapped vector.
        PBA_CLR [31],
    }
}

fields! {
    /// Interrupt cause bits, shared by ICR, ICS, IMS, IMC, IAM and EIAC.
    pub mod icr as flags Icr {
        TXDW [0],
        TXQE [1],
        LSC [2],
        RXSEQ [3],
        RXDMT0 [4],
        RXO [6],
        RXT0 [7],
        MDAC [9],
        TXD_LOW [15],
        SRPD [16],
        ACK [17],
        MNG [18],
        RXQ0 [20],
        RXQ1 [21],
        TXQ0 [22],
        TXQ1 [23],
        OTHER [24],
        INT_ASSERTED [31],
    }
}

fields! {
    /// IVAR: one nibble per entry (bits 2:0 vector, bit 3 valid), named as
    /// [`IvarEntry`](super::IvarEntry) names them; bit 31 TX interrupt on every write-back.
    pub mod ivar {
        RxQ0 [3:0],
        RxQ1 [7:4],
        TxQ0 [11:8],
        TxQ1 [15:12],
        Other [19:16],
        TX_INT_EVERY_WB [31],
    }
}

fields! {
    /// ITR and EITR: interval in 256 ns units.
    pub mod itr { INTERVAL [15:0] }
}

fields! {
    /// EECD: software EEPROM access request/grant, presence, auto-read done, size.
    pub mod eecd { SK [0], CS [1], DI [2], DO [3], REQ [6], GNT [7], PRES [8], AUTO_RD [9], SIZE_EX [14:11] }
}

fields! {
    /// TIMINCA: SYSTIM advances by INCVALUE every INCPERIOD ticks.
    pub mod timinca { INCVALUE [23:0], INCPERIOD [31:24] }
}

fields! {
    /// EERD and EEWR (82574 layout).
    pub mod eerd { START [0], DONE [1], ADDR [15:2], DATA [31:16] }
}

fields! {
    /// MDIC (PHY access).
    pub mod mdic {
        DATA [15:0],
        REGADD [20:16],
        PHYADD [25:21],
        OP_WRITE [26],
        OP_READ [27],
        READY [28],
        INT_EN [29],
        ERROR [30],
    }
}

fields! {
    /// RCTL.
    pub mod rctl {
        EN [1],
        SBP [2],
        UPE [3],
        MPE [4],
        LPE [5],
        LBM [7:6],
        RDMTS [9:8],
        DTYP [11:10],
        MO [13:12],
        BAM [15],
        BSIZE [17:16],
        VFE [18],
        CFIEN [19],
        CFI [20],
        DPF [22],
        PMCF [23],
        BSEX [25],
        SECRC [26],
        FLXBUF [30:27],
    }
}

fields! {
    /// TCTL.
    pub mod tctl { EN [1], PSP [3], CT [11:4], COLD [21:12], SWXOFF [22], RTLC [24], MULR [28] }
}

fields! {
    /// TIPG.
    pub mod tipg { IPGT [9:0], IPGR1 [19:10], IPGR2 [29:20] }
}

fields! {
    /// PBA: receive and transmit packet buffer allocation in KB.
    pub mod pba { RXA_KB [15:0], TXA_KB [31:16] }
}

fields! {
    /// PSRCTL: BSIZE0 in 128-byte units, BSIZE1-3 in KiB.
    pub mod psrctl { BSIZE0 [6:0], BSIZE1 [13:8], BSIZE2 [21:16], BSIZE3 [29:24] }
}

fields! {
    /// RXCSUM.
    pub mod rxcsum { PCSS [7:0], IPOFLD [8], TUOFLD [9], IPPCSE [12], PCSD [13] }
}

fields! {
    /// RFCTL.
    pub mod rfctl {
        ISCSI_DIS [0],
        NFSW_DIS [6],
        NFSR_DIS [7],
        IPV6_DIS [10],
        IPV6_XSUM_DIS [11],
        ACK_DIS [12],
        ACK_DATA_DIS [13],
        IPFRSP_DIS [14],
        EXTEN [15],
        IPV6_EX_DIS [16],
        NEW_IPV6_EXT_DIS [17],
    }
}

fields! {
    /// RDTR and TIDV: delay in 1.024 us units, FPD (flush partial descriptor block).
    pub mod delay { DELAY [15:0], FPD [31] }
}

fields! {
    /// SWSM.
    pub mod swsm { SMBI [0], SWESMBI [1], DRV_LOAD [3] }
}

fields! {
    /// RXDCTL.
    pub mod rxdctl { PTHRESH [5:0], HTHRESH [13:8], WTHRESH [21:16], GRAN [24] }
}

fields! {
    /// TXDCTL.
    pub mod txdctl { PTHRESH [5:0], HTHRESH [13:8], WTHRESH [21:16], COUNT_DESC [22], GRAN [24] }
}

fields! {
    /// RDLEN and TDLEN: ring length in bytes.
    pub mod ring_len { LEN_BYTES [19:0] }
}

fields! {
    /// RAH: the high address bytes, address select, address valid.
    pub mod rah { RAH [15:0], ASEL [17:16], AV [31] }
}

fields! {
    /// TARC0/TARC1 (transmit arbitration): COUNT, the frames a queue sends per turn when
    /// both queues have work; ENABLE, the queue may transmit (Linux e1000e `defines.h`
    /// `E1000_TARC0_ENABLE` = bit 10; QEMU e1000e transmits a queue only with it set,
    /// `e1000e_set_tdt`). Bits 9:7 and 31:11 are not modelled (plain storage).
    pub mod tarc { COUNT [6:0], ENABLE [10] }
}

fields! {
    /// MRQC (multiple receive queues command): MRQE 01 = RSS over two queues; the RSS
    /// field enables choose what the hash covers (QEMU `e1000x_regs.h` `E1000_MRQC_*`,
    /// the 82574L datasheet's MRQC layout).
    pub mod mrqc {
        MRQE [1:0],
        TCP_IPV4 [16],
        IPV4 [17],
        TCP_IPV6 [18],
        IPV6_EX [19],
        IPV6 [20],
    }
}
