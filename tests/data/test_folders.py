import pytest

from transferkit.data import find_splits, verify_images
from transferkit.errors import BadImageError, DataError


def test_single_folder_is_split_stratified_and_seeded(image_folder):
    a = find_splits(image_folder, val_fraction=0.25, seed=3)
    b = find_splits(image_folder, val_fraction=0.25, seed=3)
    assert a == b
    assert a.classes == ["a", "b", "c"]
    assert a.counts("val") == [2, 2, 2] and a.counts("train") == [6, 6, 6]
    assert not {p for p, _ in a.train} & {p for p, _ in a.val}


def test_train_val_layout(train_val_folder):
    splits = find_splits(train_val_folder)
    assert splits.counts("train") == [8, 8, 8] and splits.counts("val") == [3, 3, 3]


def test_val_class_missing_from_train_is_an_error(train_val_folder):
    (train_val_folder / "val" / "a").rename(train_val_folder / "val" / "zebra")
    with pytest.raises(DataError, match=r"classes not present in the training data: \['zebra'\]"):
        find_splits(train_val_folder)


def test_empty_class_folder_is_an_error(image_folder):
    (image_folder / "empty").mkdir()
    with pytest.raises(DataError, match=r"\['empty'\].*contain no images"):
        find_splits(image_folder)


def test_csv_of_paths_and_labels(image_folder):
    rows = ["path,label"] + [f"{c}/{i}.png,{c}" for c in "abc" for i in range(8)]
    (image_folder / "labels.csv").write_text("\n".join(rows))
    splits = find_splits(image_folder / "labels.csv", val_fraction=0.25)
    assert splits.classes == ["a", "b", "c"] and len(splits.train) == 18


def test_bad_images_are_skipped_with_a_count_or_stop_the_run(image_folder):
    (image_folder / "a" / "broken.png").write_bytes(b"\x89PNG garbage")
    splits = find_splits(image_folder, val_fraction=0.25)
    samples = splits.train + splits.val
    with pytest.warns(UserWarning, match="Skipped 1 unreadable image.*broken.png"):
        good = verify_images(samples, "skip")
    assert len(good) == len(samples) - 1
    with pytest.raises(BadImageError, match="broken.png"):
        verify_images(samples, "error")


def test_missing_data_folder():
    with pytest.raises(DataError, match="does not exist"):
        find_splits("no/such/folder")


def test_csv_split_column_fixes_train_val_and_test(image_folder):
    files = sorted(p.relative_to(image_folder) for p in image_folder.rglob("*.png"))
    rows = ["path,label,split"]
    for i, path in enumerate(files):
        rows.append(f"{path},{path.parent.name},{('train', 'train', 'val', 'test')[i % 4]}")
    (image_folder / "split.csv").write_text("\n".join(rows))
    splits = find_splits(image_folder / "split.csv")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 6, 6)
    assert {p.name for p, _ in splits.test} == {files[i].name for i in range(3, len(files), 4)}


def test_csv_test_rows_with_an_unknown_label_are_refused(image_folder):
    first = sorted(image_folder.rglob("*.png"))[0].relative_to(image_folder)
    (image_folder / "bad.csv").write_text(f"{first},a,train\n{first},zebra,test\n")
    with pytest.raises(DataError, match="zebra"):
        find_splits(image_folder / "bad.csv")
