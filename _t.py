import time, struct, numpy as np
from pathlib import Path
from tests.corpus import write_tiff, write_many_page_tiff, write_ico_with_png, huge_png_bytes, write_many_frame_gif
from anyres_demo.images import load_image
d = Path("/tmp/hostile"); d.mkdir(exist_ok=True)
write_tiff(d/"f32.tiff", 300, 200, 32, 3, np.linspace(0, 1, 300, dtype="<f4").tobytes(), rows_per_strip=64)
write_tiff(d/"i32.tiff", 300, 200, 32, 2, (np.arange(300, dtype="<i4") * 200).tobytes(), rows_per_strip=64)
write_tiff(d/"u16.tiff", 300, 200, 16, 1, (np.arange(300, dtype="<u2") * 200).tobytes(), rows_per_strip=300)
for n in ("f32.tiff", "i32.tiff", "u16.tiff"):
    l = load_image(d/n); print(n, l.size_hw, l.notes, l.image.getpixel((299, 5)), l.image.getpixel((0,5)))
write_many_page_tiff(d/"p3.tiff", 3); print(load_image(d/"p3.tiff").notes)
write_many_page_tiff(d/"p40k.tiff", 40000)
t=time.time()
try: load_image(d/"p40k.tiff")
except ValueError as e: print(e, time.time()-t)
write_many_frame_gif(d/"g.gif", 200000)
t=time.time(); print(load_image(d/"g.gif").notes, time.time()-t)
write_ico_with_png(d/"big.ico", huge_png_bytes(d/"h.png", 13000))
write_ico_with_png(d/"big.cur", (d/"h.png").read_bytes(), cur=True)
for n in ("big.ico", "big.cur"):
    t=time.time()
    try: load_image(d/n)
    except ValueError as e: print(n, e, time.time()-t)
from PIL import Image
Image.new("RGBA", (40, 30), (1,2,3,255)).save(d/"small.ico", sizes=[(40,30)])
print(load_image(d/"small.ico").size_hw)
