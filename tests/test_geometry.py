import pytest

from anyres_demo.geometry import Box, Size, check_size, parse_size


def test_size_from_pil_swaps_to_height_width():
    s = Size.from_pil((1920, 1080))
    assert (s.height, s.width) == (1080, 1920)
    assert s.wh == (1920, 1080) and s.hw == (1080, 1920)
    assert str(s) == "1920x1080"


@pytest.mark.parametrize("text,hw", [("1920x1080", (1080, 1920)), ("10X2000", (2000, 10)),
                                     (" 3 x 4 ", (4, 3))])
def test_parse_size(text, hw):
    assert parse_size(text).hw == hw


@pytest.mark.parametrize("text", ["1920", "axb", "1x2x3", ""])
def test_parse_size_rejects_with_message(text):
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size(text)


def test_check_size_names_the_bad_size():
    with pytest.raises(ValueError, match="0x5"):
        check_size(Size(5, 0))


def test_box_clip_scale():
    b = Box(-10, 5, 50, 200).clip(Size(100, 40))
    assert b.as_tuple() == (0, 5, 40, 100)
    assert Box(0, 0, 2, 3).scale(2, 10).as_tuple() == (0, 0, 4, 30)
    assert Box(5, 5, 3, 9).area == 0
