"""The CPU set-up a time-budgeted run chooses by timing (cbam_course.fast.setup), and the native-bfloat16
check it relies on."""
import torch


def test_choose_cpu_setup_times_the_candidates_and_says_why(monkeypatch):
    from cbam_course import AttentionCNN
    from cbam_course.fast import setup as setup_module

    monkeypatch.setattr(setup_module, "cpu_has_native_bfloat16", lambda: True)
    assert len(setup_module.candidate_setups(bfloat16=False)) * 2 == len(setup_module.candidate_setups())
    monkeypatch.setattr(setup_module, "cpu_has_native_bfloat16", lambda: False)
    candidates = setup_module.candidate_setups()
    assert {c.channels_last for c in candidates} == {False, True} and not any(c.bfloat16 for c in candidates)
    fixed = setup_module.candidate_setups(channels_last=True, bfloat16=True)  # what the caller fixed holds
    assert fixed and all(c.channels_last and c.bfloat16 for c in fixed)
    assert {c.channels_last for c in setup_module.candidate_setups(bfloat16=False)} == {False, True}
    model = AttentionCNN(attention="cbam", width=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    chosen, why = setup_module.choose_cpu_setup(model, batch_size=8, rounds=1)
    assert chosen in candidates and str(chosen) in why and "fastest of" in why
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is untouched
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads


def test_capped_kernels_count_as_no_native_bfloat16(monkeypatch):
    from cbam_course.fast.cpu import cpu_has_native_bfloat16

    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert not cpu_has_native_bfloat16()
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_has_native_bfloat16()
