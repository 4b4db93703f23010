#!/usr/bin/env bash
# Makes the load-test media clips with Debian's ffmpeg (apt-get install ffmpeg).
#
# Video: VP8 test pattern, 4 s at 30 fps, a keyframe every 30 frames (1 s), so a
# bot answers a keyframe request within a second by jumping to the next one.
# Three sizes for --video-bitrate 150 / 500 / 1500 (kbps). IVF container.
# Audio: Opus, 4 s of a two-tone signal, 20 ms frames, 32 kbps. Ogg container,
# one packet per page.
set -euo pipefail
cd "$(dirname "$0")"

video() { # name size kbps
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=$2:rate=30,drawtext=text='loadtest $3 kbps':fontcolor=white:fontsize=24:x=10:y=10:box=1:boxcolor=black@0.5" \
    -t 4 -c:v libvpx -b:v "$3k" -minrate "$3k" -maxrate "$3k" -bufsize "$(( $3 / 2 ))k" \
    -g 30 -keyint_min 30 -auto-alt-ref 0 -lag-in-frames 0 -deadline good -cpu-used 4 \
    -pix_fmt yuv420p -f ivf "$1"
}

video vp8-150k.ivf 320x180 150
video vp8-500k.ivf 640x360 500
video vp8-1500k.ivf 1280x720 1500

ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=4" \
  -f lavfi -i "sine=frequency=660:sample_rate=48000:duration=4" \
  -filter_complex "[0][1]amix=inputs=2,volume=0.5" -ac 2 \
  -c:a libopus -b:a 32k -frame_duration 20 -application audio \
  -page_duration 20000 -f ogg opus-32k.ogg

ls -l ./*.ivf ./*.ogg
