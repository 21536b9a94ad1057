//! The only module with `unsafe` code: owning handles around the libopus
//! custom-mode objects of `tutti-opus-sys`.
//!
//! Every handle checks the buffer sizes that libopus relies on *before* calling
//! into C, so the safe methods here cannot make libopus read or write out of
//! bounds whatever the caller passes.

use std::ffi::{c_int, CStr};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use tutti_opus_sys as sys;

use crate::{Channels, CodecError, FrameSize, SAMPLE_RATE_HZ};

/// The largest packet libopus accepts (`len > 1275` is `OPUS_BAD_ARG`).
pub(crate) const MAX_PACKET_BYTES: usize = 1275;

/// `opus_get_version_string()`.
pub(crate) fn version_string() -> &'static str {
    // SAFETY: opus_get_version_string returns a pointer to a NUL-terminated
    // string literal in the library (static storage duration, never freed).
    let s = unsafe { CStr::from_ptr(sys::opus_get_version_string()) };
    s.to_str().unwrap_or("libopus (non-UTF-8 version string)")
}

/// `opus_strerror(code)`.
pub(crate) fn error_message(code: i32) -> &'static str {
    // SAFETY: opus_strerror accepts any int and returns a pointer to a static
    // NUL-terminated string literal ("unknown error" for unknown codes).
    let s = unsafe { CStr::from_ptr(sys::opus_strerror(code)) };
    s.to_str().unwrap_or("unknown error")
}

/// An `OpusCustomMode` for 48 kHz and one frame size.
pub(crate) struct Mode {
    ptr: NonNull<sys::OpusCustomMode>,
    frame_samples: usize,
}

// SAFETY: a CELT mode is written only inside opus_custom_mode_create; encoders
// and decoders read it through `const CELTMode *` and never modify it, and
// libopus keeps no other reference to it. Sharing `&Mode` between threads and
// moving it are therefore fine.
unsafe impl Send for Mode {}
// SAFETY: see `Send`: the mode is immutable after creation.
unsafe impl Sync for Mode {}

impl Mode {
    fn create(frame_samples: usize) -> Result<Mode, i32> {
        let mut error: c_int = sys::OPUS_OK;
        // SAFETY: plain call with an in-range sample rate and frame size and a
        // valid out-pointer for the error code.
        let ptr = unsafe { sys::opus_custom_mode_create(SAMPLE_RATE_HZ as i32, frame_samples as c_int, &mut error) };
        match NonNull::new(ptr) {
            Some(ptr) if error == sys::OPUS_OK => Ok(Mode { ptr, frame_samples }),
            Some(ptr) => {
                // SAFETY: ptr came from opus_custom_mode_create and is not used again.
                unsafe { sys::opus_custom_mode_destroy(ptr.as_ptr()) };
                Err(error)
            }
            None => Err(if error == sys::OPUS_OK { sys::OPUS_ALLOC_FAIL } else { error }),
        }
    }
}

impl Drop for Mode {
    fn drop(&mut self) {
        // SAFETY: ptr came from opus_custom_mode_create and is destroyed once.
        // Never reached for the process-wide modes (statics are not dropped),
        // which is what keeps them alive for every encoder/decoder.
        unsafe { sys::opus_custom_mode_destroy(self.ptr.as_ptr()) }
    }
}

/// The process-wide mode for `frame` (created on first use, never freed).
pub(crate) fn shared_mode(frame: FrameSize) -> Result<&'static Mode, CodecError> {
    static MODE_64: OnceLock<Result<Mode, i32>> = OnceLock::new();
    static MODE_128: OnceLock<Result<Mode, i32>> = OnceLock::new();
    let cell = match frame {
        FrameSize::Samples64 => &MODE_64,
        FrameSize::Samples128 => &MODE_128,
    };
    mode_of(cell.get_or_init(|| Mode::create(frame.samples())))
}

/// The process-wide 960-sample (20 ms) mode: libopus hands out its built-in standard mode for it,
/// whose packets the encoder writes with a standard Opus TOC byte (CELT-only, fullband).
pub(crate) fn standard_mode() -> Result<&'static Mode, CodecError> {
    static MODE_960: OnceLock<Result<Mode, i32>> = OnceLock::new();
    mode_of(MODE_960.get_or_init(|| Mode::create(crate::stream_encoder::STREAM_FRAME)))
}

fn mode_of(cell: &'static Result<Mode, i32>) -> Result<&'static Mode, CodecError> {
    match cell {
        Ok(mode) => Ok(mode),
        Err(code) => Err(CodecError::Opus { call: "opus_custom_mode_create", code: *code }),
    }
}

/// Encoder CTLs used by this crate (all take one `opus_int32`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum EncoderCtl {
    Vbr,
    Bitrate,
    Complexity,
    PacketLossPerc,
    #[cfg_attr(not(test), allow(dead_code))]
    Application,
}

impl EncoderCtl {
    fn request(self) -> c_int {
        match self {
            EncoderCtl::Vbr => sys::OPUS_SET_VBR_REQUEST,
            EncoderCtl::Bitrate => sys::OPUS_SET_BITRATE_REQUEST,
            EncoderCtl::Complexity => sys::OPUS_SET_COMPLEXITY_REQUEST,
            EncoderCtl::PacketLossPerc => sys::OPUS_SET_PACKET_LOSS_PERC_REQUEST,
            EncoderCtl::Application => sys::OPUS_SET_APPLICATION_REQUEST,
        }
    }

    fn name(self) -> &'static str {
        match self {
            EncoderCtl::Vbr => "OPUS_SET_VBR",
            EncoderCtl::Bitrate => "OPUS_SET_BITRATE",
            EncoderCtl::Complexity => "OPUS_SET_COMPLEXITY",
            EncoderCtl::PacketLossPerc => "OPUS_SET_PACKET_LOSS_PERC",
            EncoderCtl::Application => "OPUS_SET_APPLICATION",
        }
    }
}

/// Converts a libopus return value into a byte/sample count or an error.
fn check(call: &'static str, ret: c_int) -> Result<usize, CodecError> {
    usize::try_from(ret).map_err(|_| CodecError::Opus { call, code: ret })
}

/// An owned `OpusCustomEncoder`.
pub(crate) struct RawEncoder {
    ptr: NonNull<sys::OpusCustomEncoder>,
    /// Interleaved samples per frame: frame samples x channels.
    pcm_len: usize,
    frame_samples: c_int,
}

// SAFETY: the encoder state is owned exclusively by this handle (only reachable
// through `&mut self`), libopus keeps no thread-local or global mutable state
// in this build (VAR_ARRAYS, no pseudostack), and the mode it points to is a
// `&'static Mode` that is `Sync`.
unsafe impl Send for RawEncoder {}

impl RawEncoder {
    pub(crate) fn new(mode: &'static Mode, channels: Channels) -> Result<Self, CodecError> {
        let mut error: c_int = sys::OPUS_OK;
        // SAFETY: mode is a live mode that outlives the encoder ('static), the
        // channel count is 1 or 2, and `error` is a valid out-pointer.
        let ptr = unsafe { sys::opus_custom_encoder_create(mode.ptr.as_ptr(), channels.count() as c_int, &mut error) };
        let ptr = NonNull::new(ptr).ok_or(CodecError::Opus {
            call: "opus_custom_encoder_create",
            code: if error == sys::OPUS_OK { sys::OPUS_ALLOC_FAIL } else { error },
        })?;
        let raw = RawEncoder {
            ptr,
            pcm_len: mode.frame_samples * channels.count(),
            frame_samples: mode.frame_samples as c_int,
        };
        if error != sys::OPUS_OK {
            return Err(CodecError::Opus { call: "opus_custom_encoder_create", code: error });
        }
        Ok(raw)
    }

    /// Applies one `OPUS_SET_*` CTL; returns the raw libopus result code.
    pub(crate) fn ctl_raw(&mut self, ctl: EncoderCtl, value: i32) -> i32 {
        // SAFETY: ptr is a live encoder; every request in `EncoderCtl` reads
        // exactly one opus_int32 vararg, which is what is passed.
        unsafe { sys::opus_custom_encoder_ctl(self.ptr.as_ptr(), ctl.request(), value) }
    }

    pub(crate) fn ctl(&mut self, ctl: EncoderCtl, value: i32) -> Result<(), CodecError> {
        match self.ctl_raw(ctl, value) {
            sys::OPUS_OK => Ok(()),
            code => Err(CodecError::Opus { call: ctl.name(), code }),
        }
    }

    pub(crate) fn reset(&mut self) -> Result<(), CodecError> {
        // SAFETY: ptr is a live encoder; OPUS_RESET_STATE takes no vararg.
        let ret = unsafe { sys::opus_custom_encoder_ctl(self.ptr.as_ptr(), sys::OPUS_RESET_STATE) };
        check("OPUS_RESET_STATE", ret).map(drop)
    }

    fn check_buffers(&self, pcm_len: usize, out_len: usize) -> Result<(), CodecError> {
        if pcm_len != self.pcm_len {
            return Err(CodecError::PcmLength { expected: self.pcm_len, actual: pcm_len });
        }
        if !(2..=MAX_PACKET_BYTES).contains(&out_len) {
            return Err(CodecError::Opus { call: "opus_custom_encode", code: sys::OPUS_BAD_ARG });
        }
        Ok(())
    }

    /// Encodes one frame into exactly `out.len()` bytes (CBR).
    pub(crate) fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        self.check_buffers(pcm.len(), out.len())?;
        // SAFETY: ptr is a live encoder; pcm holds frame_samples x channels
        // samples, exactly what opus_custom_encode reads for this frame size;
        // out is valid for out.len() (2..=1275) bytes and libopus writes at most
        // that many.
        let ret = unsafe {
            sys::opus_custom_encode(
                self.ptr.as_ptr(),
                pcm.as_ptr(),
                self.frame_samples,
                out.as_mut_ptr(),
                out.len() as c_int,
            )
        };
        check("opus_custom_encode", ret)
    }

    /// Like [`RawEncoder::encode`] for float PCM (nominal range -1.0..=1.0).
    pub(crate) fn encode_float(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<usize, CodecError> {
        self.check_buffers(pcm.len(), out.len())?;
        // SAFETY: as in `encode`, with f32 samples.
        let ret = unsafe {
            sys::opus_custom_encode_float(
                self.ptr.as_ptr(),
                pcm.as_ptr(),
                self.frame_samples,
                out.as_mut_ptr(),
                out.len() as c_int,
            )
        };
        check("opus_custom_encode_float", ret)
    }
}

impl Drop for RawEncoder {
    fn drop(&mut self) {
        // SAFETY: ptr came from opus_custom_encoder_create and is destroyed once.
        unsafe { sys::opus_custom_encoder_destroy(self.ptr.as_ptr()) }
    }
}

/// An owned `OpusCustomDecoder`.
pub(crate) struct RawDecoder {
    ptr: NonNull<sys::OpusCustomDecoder>,
    pcm_len: usize,
    frame_samples: c_int,
}

// SAFETY: as for `RawEncoder`: exclusively owned state, static immutable mode.
unsafe impl Send for RawDecoder {}

impl RawDecoder {
    pub(crate) fn new(mode: &'static Mode, channels: Channels) -> Result<Self, CodecError> {
        let mut error: c_int = sys::OPUS_OK;
        // SAFETY: as in `RawEncoder::new`.
        let ptr = unsafe { sys::opus_custom_decoder_create(mode.ptr.as_ptr(), channels.count() as c_int, &mut error) };
        let ptr = NonNull::new(ptr).ok_or(CodecError::Opus {
            call: "opus_custom_decoder_create",
            code: if error == sys::OPUS_OK { sys::OPUS_ALLOC_FAIL } else { error },
        })?;
        let raw = RawDecoder {
            ptr,
            pcm_len: mode.frame_samples * channels.count(),
            frame_samples: mode.frame_samples as c_int,
        };
        if error != sys::OPUS_OK {
            return Err(CodecError::Opus { call: "opus_custom_decoder_create", code: error });
        }
        Ok(raw)
    }

    pub(crate) fn reset(&mut self) -> Result<(), CodecError> {
        // SAFETY: ptr is a live decoder; OPUS_RESET_STATE takes no vararg.
        let ret = unsafe { sys::opus_custom_decoder_ctl(self.ptr.as_ptr(), sys::OPUS_RESET_STATE) };
        check("OPUS_RESET_STATE", ret).map(drop)
    }

    /// Pointer/length for libopus: `None` and empty packets become NULL (packet
    /// loss). An empty slice must not be passed as a pointer: with custom-mode
    /// signalling libopus reads `data[0]` whenever `data != NULL`.
    fn packet_args(packet: Option<&[u8]>) -> Result<(*const u8, c_int), CodecError> {
        match packet {
            None | Some([]) => Ok((ptr::null(), 0)),
            Some(p) if p.len() > MAX_PACKET_BYTES => Err(CodecError::PacketTooLong(p.len())),
            Some(p) => Ok((p.as_ptr(), p.len() as c_int)),
        }
    }

    fn check_pcm(&self, pcm_len: usize) -> Result<(), CodecError> {
        if pcm_len != self.pcm_len {
            return Err(CodecError::PcmLength { expected: self.pcm_len, actual: pcm_len });
        }
        Ok(())
    }

    /// Decodes one frame (or conceals a lost one); returns samples per channel.
    pub(crate) fn decode(&mut self, packet: Option<&[u8]>, pcm: &mut [i16]) -> Result<usize, CodecError> {
        self.check_pcm(pcm.len())?;
        let (data, len) = Self::packet_args(packet)?;
        // SAFETY: ptr is a live decoder; data is NULL (len 0) or valid for len
        // (1..=1275) bytes; pcm holds frame_samples x channels samples and
        // libopus writes at most channels x frame_samples of them (the frame
        // size is fixed by the mode, LM 0).
        let ret =
            unsafe { sys::opus_custom_decode(self.ptr.as_ptr(), data, len, pcm.as_mut_ptr(), self.frame_samples) };
        check("opus_custom_decode", ret)
    }

    /// Like [`RawDecoder::decode`] with float output (nominal range -1.0..=1.0).
    pub(crate) fn decode_float(&mut self, packet: Option<&[u8]>, pcm: &mut [f32]) -> Result<usize, CodecError> {
        self.check_pcm(pcm.len())?;
        let (data, len) = Self::packet_args(packet)?;
        // SAFETY: as in `decode`, with f32 samples.
        let ret = unsafe {
            sys::opus_custom_decode_float(self.ptr.as_ptr(), data, len, pcm.as_mut_ptr(), self.frame_samples)
        };
        check("opus_custom_decode_float", ret)
    }
}

impl Drop for RawDecoder {
    fn drop(&mut self) {
        // SAFETY: ptr came from opus_custom_decoder_create and is destroyed once.
        unsafe { sys::opus_custom_decoder_destroy(self.ptr.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jamulus sets OPUS_SET_APPLICATION(RESTRICTED_LOWDELAY) on its custom
    /// encoders; the CELT custom encoder does not know that CTL.
    #[test]
    fn application_ctl_is_unimplemented_for_custom_encoders() {
        for frame in [FrameSize::Samples64, FrameSize::Samples128] {
            let mode = shared_mode(frame).unwrap();
            let mut enc = RawEncoder::new(mode, Channels::Mono).unwrap();
            let ret = enc.ctl_raw(EncoderCtl::Application, sys::OPUS_APPLICATION_RESTRICTED_LOWDELAY);
            assert_eq!(ret, sys::OPUS_UNIMPLEMENTED);
        }
    }

    #[test]
    fn error_messages_come_from_libopus() {
        assert_eq!(error_message(sys::OPUS_BAD_ARG), "invalid argument");
        assert_eq!(error_message(sys::OPUS_UNIMPLEMENTED), "request not implemented");
    }
}
