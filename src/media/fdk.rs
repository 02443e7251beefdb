//! The Fraunhofer FDK AAC encoder (C, through `fdk-aac-sys`), set up for what sipcast sends:
//! AAC-LC, mono, raw access units, constant bitrate — and a coded bandwidth no wider than the
//! call's own audio.
//!
//! Telephone audio stops at 4 kHz (8 kHz G.711) or 8 kHz (wideband); resampled to 48 kHz it
//! has nothing above that, yet by default the encoder analyses, shapes and quantizes up to
//! ~17 kHz. Telling it the real band (`AACENC_BANDWIDTH`) leaves the decoded audio the same
//! and saves about a fifth of its work (callgrind, 48 kHz mono 64 kbit/s: 219 M → 179 M
//! instructions for ten seconds of a tone). The `fdk-aac` crate's encoder has no way to set it,
//! hence this small wrapper over the same library.

#![allow(unsafe_code)]

use fdk_aac_sys as sys;
use std::ffi::c_void;
use std::ptr;

/// What the encoder is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderSettings {
    pub sample_rate: u32,
    pub bitrate: u32,
    /// The highest frequency worth coding, in Hz; `None` lets the encoder choose.
    pub bandwidth_hz: Option<u32>,
}

/// One encoder instance (AAC-LC mono, raw access units).
pub struct FdkEncoder {
    handle: sys::HANDLE_AACENCODER,
}

// SAFETY: the handle is owned by this value alone and the library keeps no thread-local state;
// moving it between threads (never sharing it) is sound.
unsafe impl Send for FdkEncoder {}
// SAFETY: the only `&self` calls (`aacEncInfo`) read the encoder's configuration; encoding
// takes `&mut self`.
unsafe impl Sync for FdkEncoder {}

fn check(call: &str, code: sys::AACENC_ERROR) -> Result<(), String> {
    if code == sys::AACENC_ERROR_AACENC_OK {
        Ok(())
    } else {
        Err(format!("{call} failed (FDK error {code:#x})"))
    }
}

impl FdkEncoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, String> {
        let mut handle: sys::HANDLE_AACENCODER = ptr::null_mut();
        // SAFETY: aacEncOpen writes a fresh handle (or leaves null on failure).
        check("aacEncOpen", unsafe { sys::aacEncOpen(&mut handle, 0, 1) })?;
        let encoder = FdkEncoder { handle };
        let mut params = vec![
            (
                sys::AACENC_PARAM_AACENC_AOT,
                sys::AUDIO_OBJECT_TYPE_AOT_AAC_LC as u32,
            ),
            (sys::AACENC_PARAM_AACENC_BITRATEMODE, 0),
            (sys::AACENC_PARAM_AACENC_BITRATE, settings.bitrate),
            (sys::AACENC_PARAM_AACENC_SAMPLERATE, settings.sample_rate),
            (sys::AACENC_PARAM_AACENC_TRANSMUX, 0),
            (sys::AACENC_PARAM_AACENC_CHANNELMODE, 1),
        ];
        if let Some(bandwidth) = settings.bandwidth_hz {
            params.push((
                sys::AACENC_PARAM_AACENC_BANDWIDTH,
                bandwidth.min(settings.sample_rate / 2),
            ));
        }
        for (param, value) in params {
            // SAFETY: a live handle; the library checks the value.
            check("aacEncoder_SetParam", unsafe {
                sys::aacEncoder_SetParam(encoder.handle, param, value)
            })?;
        }
        // SAFETY: all-null arguments ask the library to apply the parameters (its documented
        // initialisation call).
        check("aacEncEncode(init)", unsafe {
            sys::aacEncEncode(
                encoder.handle,
                ptr::null(),
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            )
        })?;
        Ok(encoder)
    }

    fn info(&self) -> Result<sys::AACENC_InfoStruct, String> {
        let mut info = std::mem::MaybeUninit::<sys::AACENC_InfoStruct>::uninit();
        // SAFETY: a live handle; aacEncInfo fills the struct when it returns OK.
        check("aacEncInfo", unsafe {
            sys::aacEncInfo(self.handle, info.as_mut_ptr())
        })?;
        // SAFETY: initialised by the successful call above.
        Ok(unsafe { info.assume_init() })
    }

    /// The encoder's delay in samples (`nDelay`).
    pub fn delay_samples(&self) -> Result<u32, String> {
        Ok(self.info()?.nDelay)
    }

    /// The AudioSpecificConfig the encoder itself writes.
    pub fn audio_specific_config(&self) -> Result<Vec<u8>, String> {
        let info = self.info()?;
        let len = usize::try_from(info.confSize).unwrap_or(0);
        Ok(info.confBuf.get(..len).unwrap_or_default().to_vec())
    }

    /// Feeds `pcm` (mono, at the configured rate), writing at most one access unit into
    /// `out`. Returns (samples consumed, bytes written).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<(usize, usize), String> {
        let samples = i32::try_from(pcm.len()).map_err(|_| "PCM block too large".to_string())?;
        let mut in_ptr = pcm.as_ptr().cast_mut().cast::<c_void>();
        let mut in_id = sys::AACENC_BufferIdentifier_IN_AUDIO_DATA as i32;
        let mut in_size = samples * 2;
        let mut in_element = 2i32;
        let input = one_buffer(&mut in_ptr, &mut in_id, &mut in_size, &mut in_element);
        let mut out_ptr = out.as_mut_ptr().cast::<c_void>();
        let mut out_id = sys::AACENC_BufferIdentifier_OUT_BITSTREAM_DATA as i32;
        let mut out_size = i32::try_from(out.len()).unwrap_or(i32::MAX);
        let mut out_element = 1i32;
        let output = one_buffer(&mut out_ptr, &mut out_id, &mut out_size, &mut out_element);
        let in_args = sys::AACENC_InArgs {
            numInSamples: samples,
            numAncBytes: 0,
        };
        // SAFETY: plain C struct of integers, all-zero valid.
        let mut out_args: sys::AACENC_OutArgs = unsafe { std::mem::zeroed() };
        // SAFETY: every descriptor points at live buffers of the sizes stated; the library
        // reads at most `samples` samples and writes at most `out.len()` bytes.
        check("aacEncEncode", unsafe {
            sys::aacEncEncode(self.handle, &input, &output, &in_args, &mut out_args)
        })?;
        let consumed = usize::try_from(out_args.numInSamples).unwrap_or(0);
        let written = usize::try_from(out_args.numOutBytes)
            .unwrap_or(0)
            .min(out.len());
        Ok((consumed, written))
    }
}

/// A descriptor of one buffer; the four fields it points at must outlive its use.
fn one_buffer(
    buffer: &mut *mut c_void,
    identifier: &mut i32,
    size: &mut i32,
    element_size: &mut i32,
) -> sys::AACENC_BufDesc {
    sys::AACENC_BufDesc {
        numBufs: 1,
        bufs: buffer,
        bufferIdentifiers: identifier,
        bufSizes: size,
        bufElSizes: element_size,
    }
}

impl Drop for FdkEncoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from aacEncOpen and is closed once.
        unsafe {
            sys::aacEncClose(&mut self.handle);
        }
    }
}

/// FDK's AAC decoder, for tests that judge encoded audio by decoding it.
#[cfg(test)]
pub struct FdkDecoder {
    handle: sys::HANDLE_AACDECODER,
}

#[cfg(test)]
impl FdkDecoder {
    /// A raw-access-unit decoder configured with `audio_specific_config`.
    pub fn new(audio_specific_config: &[u8]) -> Self {
        // SAFETY: opens a fresh handle; checked for null below.
        let handle = unsafe { sys::aacDecoder_Open(sys::TRANSPORT_TYPE_TT_MP4_RAW, 1) };
        assert!(!handle.is_null(), "aacDecoder_Open");
        let mut config = audio_specific_config.as_ptr().cast_mut();
        let length = audio_specific_config.len() as u32;
        // SAFETY: a live handle; the library reads `length` bytes from `config`.
        let code = unsafe { sys::aacDecoder_ConfigRaw(handle, &mut config, &length) };
        assert_eq!(code, 0, "aacDecoder_ConfigRaw");
        FdkDecoder { handle }
    }

    /// Decodes one access unit; `Err` carries the decoder's error code.
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Vec<i16>, u32> {
        let mut input = access_unit.as_ptr().cast_mut();
        let size = access_unit.len() as u32;
        let mut valid = size;
        // SAFETY: the library copies at most `size` bytes from `input`.
        let code = unsafe { sys::aacDecoder_Fill(self.handle, &mut input, &size, &mut valid) };
        if code != 0 {
            return Err(code);
        }
        let mut pcm = vec![0i16; 8 * 2048];
        // SAFETY: `pcm` holds the number of samples stated.
        let code = unsafe {
            sys::aacDecoder_DecodeFrame(self.handle, pcm.as_mut_ptr(), pcm.len() as i32, 0)
        };
        if code != 0 {
            return Err(code);
        }
        // SAFETY: the stream info of a live handle, valid after a decoded frame.
        let info = unsafe { &*sys::aacDecoder_GetStreamInfo(self.handle) };
        pcm.truncate(usize::try_from(info.frameSize * info.numChannels).unwrap_or(0));
        Ok(pcm)
    }

    /// Samples the decoder itself delays its output by (its limiter's look-ahead).
    pub fn output_delay(&self) -> usize {
        // SAFETY: the stream info of a live handle.
        let info = unsafe { &*sys::aacDecoder_GetStreamInfo(self.handle) };
        info.outputDelay as usize
    }
}

#[cfg(test)]
impl Drop for FdkDecoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from aacDecoder_Open and is closed once.
        unsafe { sys::aacDecoder_Close(self.handle) }
    }
}
