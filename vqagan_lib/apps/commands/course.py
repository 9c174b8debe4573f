"""Course commands: `course-times` (the README course map's times, read from the stored notebooks)."""
from vqagan_lib.apps.course_times import COURSE_END, COURSE_START, update_course_block
from vqagan_lib.fileio import atomic_write_text
from vqagan_lib.runtime import work_dir


def register(subparsers) -> None:
    p = subparsers.add_parser("course-times")
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's course block with these times")
    p.set_defaults(handler=run_course_times)


def run_course_times(args) -> int:
    readme = work_dir() / "README.md"
    text = update_course_block(readme.read_text(), work_dir() / "notebooks")
    print(text.split(COURSE_START, 1)[1].split(COURSE_END, 1)[0].strip())
    if args.update_readme:
        atomic_write_text(readme, text)
        print(f"\nwrote {readme}")
    return 0
