//! A minimal RFB (VNC) server for each running fake guest, so that the
//! console path (API → token → proxy → guest display) is exercised without
//! QEMU: the `RFB 003.008` banner, the version and security handshake
//! (security type None; 3.3, 3.7 and 3.8 clients), ServerInit with a small
//! framebuffer, and a full frame (raw encoding, in the client's pixel
//! format) for every non-incremental FramebufferUpdateRequest. The guest
//! never changes, so incremental requests wait. Each display listens on
//! 127.0.0.1 at a port of its own; dropping the [`Display`] closes it and
//! its connections.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The framebuffer's size.
pub const WIDTH: u16 = 320;
pub const HEIGHT: u16 = 200;

/// A guest's display: listening until dropped.
#[derive(Debug)]
pub struct Display {
    pub addr: SocketAddr,
    task: tokio::task::AbortHandle,
}

impl Drop for Display {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a display named `name` on 127.0.0.1 at a free port.
pub fn start(name: String) -> std::io::Result<Display> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let listener = TcpListener::from_std(std_listener)?;
    let task = tokio::spawn(async move {
        // Connections live in this task's set: aborting it ends them too.
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let name = name.clone();
                        conns.spawn(async move {
                            let _ = serve(stream, &name).await;
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "fake display accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
    .abort_handle();
    Ok(Display { addr, task })
}

/// The client's pixel format (RFB §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

impl PixelFormat {
    /// The server's own: 32 bits, depth 24, little-endian, 8 bits a colour.
    pub const SERVER: PixelFormat = PixelFormat {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.bits_per_pixel;
        b[1] = self.depth;
        b[2] = self.big_endian as u8;
        b[3] = self.true_colour as u8;
        b[4..6].copy_from_slice(&self.red_max.to_be_bytes());
        b[6..8].copy_from_slice(&self.green_max.to_be_bytes());
        b[8..10].copy_from_slice(&self.blue_max.to_be_bytes());
        b[10] = self.red_shift;
        b[11] = self.green_shift;
        b[12] = self.blue_shift;
        b
    }

    pub fn decode(b: &[u8; 16]) -> PixelFormat {
        PixelFormat {
            bits_per_pixel: b[0],
            depth: b[1],
            big_endian: b[2] != 0,
            true_colour: b[3] != 0,
            red_max: u16::from_be_bytes([b[4], b[5]]),
            green_max: u16::from_be_bytes([b[6], b[7]]),
            blue_max: u16::from_be_bytes([b[8], b[9]]),
            red_shift: b[10],
            green_shift: b[11],
            blue_shift: b[12],
        }
    }

    /// One pixel of colour `rgb` (8 bits each) in this format.
    pub fn pixel(&self, rgb: [u8; 3], out: &mut Vec<u8>) {
        let scale = |c: u8, max: u16| (u32::from(c) * u32::from(max) + 127) / 255;
        let v = (scale(rgb[0], self.red_max) << self.red_shift)
            | (scale(rgb[1], self.green_max) << self.green_shift)
            | (scale(rgb[2], self.blue_max) << self.blue_shift);
        let bytes = usize::from(self.bits_per_pixel / 8).clamp(1, 4);
        if self.big_endian {
            out.extend_from_slice(&v.to_be_bytes()[4 - bytes..]);
        } else {
            out.extend_from_slice(&v.to_le_bytes()[..bytes]);
        }
    }
}

/// The colour of the fake guest's screen at (x, y): a gradient.
fn colour(x: u16, y: u16) -> [u8; 3] {
    let r = (u32::from(x) * 255 / u32::from(WIDTH.max(1))) as u8;
    let g = (u32::from(y) * 255 / u32::from(HEIGHT.max(1))) as u8;
    [r, g, 0x60]
}

/// A FramebufferUpdate of the whole screen, raw-encoded in `pf`.
pub fn full_frame(pf: &PixelFormat) -> Vec<u8> {
    let bpp = usize::from(pf.bits_per_pixel / 8).clamp(1, 4);
    let mut m = Vec::with_capacity(16 + usize::from(WIDTH) * usize::from(HEIGHT) * bpp);
    m.extend_from_slice(&[0, 0]); // FramebufferUpdate, padding
    m.extend_from_slice(&1u16.to_be_bytes()); // one rectangle
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&WIDTH.to_be_bytes());
    m.extend_from_slice(&HEIGHT.to_be_bytes());
    m.extend_from_slice(&0i32.to_be_bytes()); // raw
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            pf.pixel(colour(x, y), &mut m);
        }
    }
    m
}

/// ServerInit: the framebuffer's size, the server's pixel format, `name`.
pub fn server_init(name: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(24 + name.len());
    m.extend_from_slice(&WIDTH.to_be_bytes());
    m.extend_from_slice(&HEIGHT.to_be_bytes());
    m.extend_from_slice(&PixelFormat::SERVER.encode());
    m.extend_from_slice(&(name.len() as u32).to_be_bytes());
    m.extend_from_slice(name.as_bytes());
    m
}

/// One client, from the banner until it goes away or breaks the protocol.
async fn serve(mut s: TcpStream, name: &str) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.write_all(b"RFB 003.008\n").await?;
    let mut version = [0u8; 12];
    s.read_exact(&mut version).await?;
    let minor = match &version {
        b"RFB 003.003\n" => 3,
        b"RFB 003.007\n" => 7,
        v if v.starts_with(b"RFB 003.") => 8,
        _ => return Ok(()),
    };
    if minor == 3 {
        // 3.3: the server names the security type.
        s.write_all(&1u32.to_be_bytes()).await?;
    } else {
        s.write_all(&[1, 1]).await?; // one type: None
        let chosen = s.read_u8().await?;
        if chosen != 1 {
            if minor == 8 {
                let reason = b"security type not offered";
                s.write_all(&1u32.to_be_bytes()).await?;
                s.write_all(&(reason.len() as u32).to_be_bytes()).await?;
                s.write_all(reason).await?;
            }
            return Ok(());
        }
        if minor == 8 {
            s.write_all(&0u32.to_be_bytes()).await?; // SecurityResult OK
        }
    }
    let _shared = s.read_u8().await?; // ClientInit
    s.write_all(&server_init(name)).await?;
    let mut pf = PixelFormat::SERVER;
    loop {
        match s.read_u8().await? {
            0 => {
                let mut b = [0u8; 19];
                s.read_exact(&mut b).await?;
                let fmt: [u8; 16] = b[3..].try_into().expect("16 bytes");
                pf = PixelFormat::decode(&fmt);
            }
            2 => {
                let _pad = s.read_u8().await?;
                let n = s.read_u16().await?;
                let mut skip = vec![0u8; usize::from(n) * 4];
                s.read_exact(&mut skip).await?;
            }
            3 => {
                let mut b = [0u8; 9];
                s.read_exact(&mut b).await?;
                let incremental = b[0] != 0;
                if !incremental {
                    s.write_all(&full_frame(&pf)).await?;
                }
            }
            4 => {
                let mut b = [0u8; 7];
                s.read_exact(&mut b).await?;
            }
            5 => {
                let mut b = [0u8; 5];
                s.read_exact(&mut b).await?;
            }
            6 => {
                let mut b = [0u8; 3];
                s.read_exact(&mut b).await?;
                let len = s.read_u32().await?;
                // Cut text is bounded; more is a broken client.
                if len > 1 << 20 {
                    return Ok(());
                }
                let mut skip = vec![0u8; len as usize];
                s.read_exact(&mut skip).await?;
            }
            // A message this server never offered: the client is broken.
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn handshake(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut banner = [0u8; 12];
        c.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"RFB 003.008\n");
        c.write_all(b"RFB 003.008\n").await.unwrap();
        let mut types = [0u8; 2];
        c.read_exact(&mut types).await.unwrap();
        assert_eq!(types, [1, 1], "one security type, None");
        c.write_all(&[1]).await.unwrap();
        assert_eq!(c.read_u32().await.unwrap(), 0, "security result OK");
        c.write_all(&[1]).await.unwrap();
        let mut init = vec![0u8; 24];
        c.read_exact(&mut init).await.unwrap();
        let name_len = u32::from_be_bytes(init[20..24].try_into().unwrap()) as usize;
        let mut name = vec![0u8; name_len];
        c.read_exact(&mut name).await.unwrap();
        init.extend(name);
        (c, init)
    }

    #[tokio::test]
    async fn a_client_gets_the_banner_the_handshake_and_a_frame() {
        let d = start("instance-1".into()).unwrap();
        let (mut c, init) = handshake(d.addr).await;
        assert_eq!(init, server_init("instance-1"));
        // A 16-bit client format, then a full update request.
        let rgb565 = PixelFormat {
            bits_per_pixel: 16,
            depth: 16,
            big_endian: true,
            true_colour: true,
            red_max: 31,
            green_max: 63,
            blue_max: 31,
            red_shift: 11,
            green_shift: 5,
            blue_shift: 0,
        };
        let mut set = vec![0u8, 0, 0, 0];
        set.extend_from_slice(&rgb565.encode());
        c.write_all(&set).await.unwrap();
        c.write_all(&[2, 0, 0, 1, 0, 0, 0, 0]).await.unwrap(); // SetEncodings: raw
        c.write_all(&[3, 0, 0, 0, 0, 0, 1, 64, 0, 200])
            .await
            .unwrap();
        let expected = full_frame(&rgb565);
        assert_eq!(expected.len(), 16 + 320 * 200 * 2);
        let mut got = vec![0u8; expected.len()];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_dropped_display_refuses_connections() {
        let d = start("x".into()).unwrap();
        let addr = d.addr;
        let (mut c, _) = handshake(addr).await;
        drop(d);
        // The open connection ends, and no new one is taken.
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), c.read(&mut b))
            .await
            .expect("the connection ends");
        assert!(matches!(n, Ok(0) | Err(_)));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn pixels_follow_the_clients_format() {
        let mut out = Vec::new();
        PixelFormat::SERVER.pixel([0x11, 0x22, 0x33], &mut out);
        assert_eq!(out, [0x33, 0x22, 0x11, 0x00]);
        let mut be = PixelFormat::SERVER;
        be.big_endian = true;
        out.clear();
        be.pixel([0x11, 0x22, 0x33], &mut out);
        assert_eq!(out, [0x00, 0x11, 0x22, 0x33]);
    }
}
